"""The budget of one render: a deadline counted in operations, and size checks made before a value is built.

Used by ``hub.mapping.sandbox``. Sizes are known before the work for the operations that can blow up
(repetition, concatenation, padding widths, format widths, ``replace``, ``join``); a few costly filters
and string methods refuse inputs that are too large; every other result is checked after it is built.
"""

from __future__ import annotations

import re
import string
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sized
from typing import Any

from jinja2.exceptions import SecurityError

RENDER_SECONDS = 1.0
MAX_VALUE_CHARS = 16_000_000  # above the default body limit: a payload's own values always fit
MAX_OUTPUT_CHARS = 16_000_000
MAX_ITEMS = 2_000_000  # a list, tuple or dict built by a template
MAX_BUILT = 64_000_000  # characters and items built by one render, all values together
MAX_COSTLY_INPUT = 2_000_000  # sorting, splitting, pretty-printing… a value longer than this
MAX_PIECES = 10_000  # slice(n), batch(n)
MAX_EXPONENT = 256
MAX_INT_BITS = 100_000  # about 30,000 digits: big integers cost time quadratically
CHECK_EVERY = 32  # operations between two looks at the clock

COSTLY_FILTERS = frozenset(
    [
        "sort",
        "unique",
        "urlize",
        "wordwrap",
        "slice",
        "batch",
        "sum",
        "list",
        "urlencode",
        "dictsort",
        "groupby",
        "indent",
        "join",
        "map",
        "select",
        "reject",
        "selectattr",
        "rejectattr",
        "reverse",
        "title",
        "wordcount",
        "max",
        "min",
    ]
)
SMALLER_INPUT = dict.fromkeys(("sort", "dictsort", "groupby", "unique"), 500_000) | {
    "urlize": 100_000,
    "wordwrap": 100_000,
}
# plain text methods only: not encode (punycode is quadratic), expandtabs, format_map, translate
STR_METHODS = frozenset(
    [
        "capitalize",
        "casefold",
        "center",
        "count",
        "endswith",
        "find",
        "format",
        "index",
        "isalnum",
        "isalpha",
        "isascii",
        "isdecimal",
        "isdigit",
        "isidentifier",
        "islower",
        "isnumeric",
        "isprintable",
        "isspace",
        "istitle",
        "isupper",
        "join",
        "ljust",
        "lower",
        "lstrip",
        "partition",
        "removeprefix",
        "removesuffix",
        "replace",
        "rfind",
        "rindex",
        "rjust",
        "rpartition",
        "rsplit",
        "rstrip",
        "split",
        "splitlines",
        "startswith",
        "strip",
        "swapcase",
        "title",
        "upper",
        "zfill",
    ]
)
COSTLY_STR_METHODS = frozenset({"split", "rsplit", "splitlines", "partition", "rpartition", "join"})
PADDING = frozenset({"center", "ljust", "rjust", "zfill"})

_PERCENT_SPEC = re.compile(r"%(?:\((?:[^()]|\([^()]*\))*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[diouxXeEfFgGcrsa]")
_BRACE_WIDTH = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(\d+)?[,_]?(?:\.(\d+))?", re.S)


class BudgetExceeded(SecurityError):
    """A template went over its time or size budget."""


class RenderTimeout(BudgetExceeded):
    """Over the time budget: maybe the template, maybe a busy machine."""


class _Budget(threading.local):
    deadline = float("inf")
    ops = 0
    built = 0


budget = _Budget()


def check_deadline() -> None:
    if time.perf_counter() > budget.deadline:
        raise RenderTimeout(f"the mapping took longer than {RENDER_SECONDS} s to render")


def tick() -> None:
    """Count one operation; every CHECK_EVERY, look at the clock."""
    b = budget
    b.ops += 1
    if not b.ops % CHECK_EVERY:
        check_deadline()


def ticking(iterable: Iterable[Any]) -> Iterator[Any]:
    """What a ``{% for %}`` walks: every turn counts, even with an empty body."""
    for item in iterable:
        tick()
        yield item


def too_big(what: str) -> BudgetExceeded:
    return BudgetExceeded(f"{what} would build over {MAX_VALUE_CHARS:,} characters or items")


def check_size(value: Any) -> Any:
    """A value a template built: each one bounded, and all of one render together."""
    if isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise BudgetExceeded(f"an integer of over {MAX_INT_BITS:,} bits")
        return value
    if isinstance(value, str | bytes):
        limit = MAX_VALUE_CHARS
    elif isinstance(value, list | tuple | dict):
        limit = MAX_ITEMS
    else:
        return value
    if len(value) > limit:
        raise too_big("the mapping")
    budget.built += len(value)
    if budget.built > MAX_BUILT:
        raise BudgetExceeded(f"the mapping built over {MAX_BUILT:,} characters and items in all")
    return value


def size_of(value: Any) -> int:
    """Characters or items; a list counts what its items hold too (``[s] * n`` is n times ``s``)."""
    if isinstance(value, list | tuple):
        return len(value) + sum(len(v) for v in value if isinstance(v, str | bytes | list | tuple | dict))
    return len(value) if isinstance(value, Sized) and not isinstance(value, range) else len(str(value))


def check_percent_format(template: Any) -> None:
    """``'%99999999s' % x``, ``'%*s'``: what a printf-style string can build is the sum of its widths;
    a width given by an argument is refused."""
    if not isinstance(template, str) or "%" not in template:
        return
    total = 0
    for m in _PERCENT_SPEC.finditer(template):
        for part in m.groups():
            if part == "*":
                raise BudgetExceeded("a format width given by an argument")
            total += int(part or 0)
    if total > MAX_VALUE_CHARS:
        raise too_big("a format string")


def check_brace_format(template: Any) -> None:
    """``'{:>99999999}'.format(x)``, ``'{:{}}'``: the same for str.format, parsed as str.format parses."""
    if not isinstance(template, str) or "{" not in template:
        return
    total = 0
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError:
        return  # str.format refuses it itself
    for _, field, spec, _ in fields:
        if field is None or not spec:
            continue
        if "{" in spec:
            raise BudgetExceeded("a format width given by an argument")
        m = _BRACE_WIDTH.match(spec)
        if m:
            total += int(m.group(1) or 0) + int(m.group(2) or 0)
    if total > MAX_VALUE_CHARS:
        raise too_big("a format string")


def _check_ints(values: Iterable[Any], limit: int, what: str) -> None:
    for v in values:
        if isinstance(v, int) and not isinstance(v, bool) and v > limit:
            raise BudgetExceeded(f"{what} over {limit:,}")


def check_filter(name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Refuse, before it runs, a filter whose result or cost is too large."""
    values = [*args[1:], *kwargs.values()]
    if name == "center":
        _check_ints(values, MAX_VALUE_CHARS, "a width")
    subject = args[0] if args else None
    cap = SMALLER_INPUT.get(name, MAX_COSTLY_INPUT)
    if name in COSTLY_FILTERS and subject is not None and size_of(subject) > cap:
        raise BudgetExceeded(f"{name} on a value of over {cap:,} items or characters")
    if name == "round":
        _check_ints([abs(v) for v in values if isinstance(v, int)], 1000, "a precision")
    if name == "join":
        sep = kwargs.get("d", args[1] if len(args) > 1 else "")
        if size_of(sep) * size_of(subject) > MAX_VALUE_CHARS:
            raise too_big("join")
    if name == "wordwrap" and size_of(kwargs.get("wrapstring", args[4] if len(args) > 4 else "")) > 100:
        raise BudgetExceeded("a wrapstring over 100 characters")
    if name == "tojson":
        indent = kwargs.get("indent", args[1] if len(args) > 1 else None)
        if indent is not None and not (isinstance(indent, int) and 0 <= indent <= 16):
            raise BudgetExceeded("a JSON indent must be a number from 0 to 16")
    if name in ("slice", "batch"):
        _check_ints(values, MAX_PIECES, f"{name} count")
    if name == "format":
        check_percent_format(subject)
    if name == "indent":
        width = kwargs.get("width", args[1] if len(args) > 1 else 4)
        pad = width if isinstance(width, int) else size_of(width)
        if pad * (str(subject).count("\n") + 1) + size_of(subject) > MAX_VALUE_CHARS:
            raise too_big("indent")
    if name == "sum" and not isinstance(kwargs.get("start", args[2] if len(args) > 2 else 0), int | float):
        raise BudgetExceeded("sum adds numbers only (a list start makes it quadratic)")
    if name == "replace" and len(args) >= 3:
        check_replace(str(args[0]), str(args[1]), str(args[2]))


def check_replace(text: str, old: str, new: str) -> None:
    grows = max(len(new) - len(old), 0) * (text.count(old) if old else len(text) + 1)
    if len(text) + grows > MAX_VALUE_CHARS:
        raise too_big("replace")


def check_str_method(owner: str, name: str, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> None:
    """Only plain text methods, each refused before it would build too much."""
    if name not in STR_METHODS:
        raise SecurityError(f"str.{name} is not available in mappings")
    if name in COSTLY_STR_METHODS and len(owner) > MAX_COSTLY_INPUT:
        raise BudgetExceeded(f"str.{name} on a text of over {MAX_COSTLY_INPUT:,} characters")
    if name in PADDING:
        _check_ints([*args, *kwargs.values()], MAX_VALUE_CHARS, "a width")
    if name == "format":
        check_brace_format(owner)
    if name == "replace" and len(args) >= 2:
        check_replace(owner, str(args[0]), str(args[1]))
    if name == "join" and args:
        items = args[0]
        if isinstance(items, list | tuple) and len(owner) * len(items) + sum(map(size_of, items)) > MAX_VALUE_CHARS:
            raise too_big("join")


def check_binop(operator: str, left: Any, right: Any) -> None:
    if operator == "*":
        for seq, times in ((left, right), (right, left)):
            limit = MAX_ITEMS if isinstance(seq, list | tuple) else MAX_VALUE_CHARS
            if isinstance(times, int) and not isinstance(seq, int | float) and size_of(seq) * times > limit:
                raise too_big("a repetition")
    if isinstance(left, int) and isinstance(right, int):  # floats overflow to inf: harmless
        if operator == "**" and abs(right) > MAX_EXPONENT:
            raise BudgetExceeded(f"exponent over {MAX_EXPONENT}")
        bits = {"*": left.bit_length() + right.bit_length(), "**": left.bit_length() * abs(right)}
        if max(left.bit_length(), right.bit_length(), bits.get(operator, 0)) > MAX_INT_BITS:
            raise BudgetExceeded(f"an integer of over {MAX_INT_BITS:,} bits")
    if operator == "%":
        check_percent_format(left)
