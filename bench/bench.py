#!/usr/bin/env python3
"""Load benchmark of hub beside Node-RED and a bare ASGI floor: ``python bench/bench.py [--n 2000] ...``.

The code is the ``hubbench`` package next to this file; see bench/README.md.
"""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # hubbench, and the repository (tests.receiver, hub)

from hubbench.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
