"""The README's "Connecting providers" section, written from the connector specs (their ``setup``), so the
README and the catalogue cannot drift apart. ``python -m hub.connectors.docs README.md`` rewrites it."""

from __future__ import annotations

import sys
from pathlib import Path

from hub.connectors.catalogue import ConnectorCatalogue, builtin_catalogue
from hub.connectors.spec import ConnectorSpec

START = "<!-- connectors:start (written by `python -m hub.connectors.docs README.md`) -->"
END = "<!-- connectors:end -->"


def _secret(spec: ConnectorSpec) -> str:
    return spec.secret_help or ("required" if spec.secret_required else "optional")


def _settings(spec: ConnectorSpec) -> str:
    names = list((spec.settings_schema.get("properties") or {}).keys())
    required = set(spec.settings_schema.get("required") or [])
    secret = set(spec.secret_settings)
    shown = [f"`{n}`" + (" (required)" if n in required else "") + (" (secret)" if n in secret else "") for n in names]
    return ", ".join(shown) or "—"


def section(catalogue: ConnectorCatalogue) -> str:
    specs = catalogue.all()
    lines = [
        START,
        "",
        "| connector | id | source secret | settings | events |",
        "|---|---|---|---|---|",
    ]
    for spec in specs:
        events = "any" if "*" in spec.events else str(len(spec.events))
        lines.append(f"| [{spec.title}](#{spec.id}) | `{spec.id}` | {_secret(spec)} | {_settings(spec)} | {events} |")
    for spec in specs:
        lines += ["", f'<a id="{spec.id}"></a>', f"### {spec.title} (`{spec.id}`)", ""]
        if spec.description:
            lines += [spec.description.strip(), ""]
        lines.append(spec.setup.strip() or "No setup text yet.")
        if spec.docs:
            lines += ["", f"Provider documentation: <{spec.docs}>"]
    lines += ["", END]
    return "\n".join(lines)


def rewrite(readme: str, catalogue: ConnectorCatalogue) -> str:
    before, found, rest = readme.partition(START)
    if not found:
        raise ValueError("the README has no connectors section markers")
    _, found_end, after = rest.partition(END)
    if not found_end:
        raise ValueError("the README's connectors section has no end marker")
    return before + section(catalogue) + after


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else Path("README.md")
    path.write_text(rewrite(path.read_text(), builtin_catalogue()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
