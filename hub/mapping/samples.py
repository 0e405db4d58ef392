"""Sample events with the posts they must give: every connector's recorded deliveries, split into events
and rendered through the default mappings, committed under tests/expected/<connector>/<fixture>.json.

``hub mappings test`` re-renders every sample and compares (``--update`` rewrites the posts); the mapping
checker renders a candidate mapping on its connector's samples; the conformance suite makes sure the
events are what the connector really produces from the signed fixtures.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.connectors.catalogue import ConnectorCatalogue
from hub.mapping.catalogue import MappingCatalogue
from hub.mapping.context import mapping_context
from hub.mapping.render import MappingError, applies, render_post
from hub.mapping.spec import MappingSpec
from hub.paths import samples_dir

SAMPLE_TIME = 1_700_000_000.0


@dataclass(frozen=True)
class Sample:
    connector: str
    fixture: str  # the recorded delivery it came from (file stem)
    index: int  # its place among the events of that delivery
    type: str
    subject: str | None
    payload: Any
    ignored: bool
    post: dict[str, Any] | None  # what the default mapping must give (None: nothing is posted)

    @property
    def name(self) -> str:
        return f"{self.connector}/{self.fixture}#{self.index}"


def entry(event_type: str, subject: str | None, payload: Any, ignored: bool, post: dict[str, Any] | None) -> Any:
    """One event of an expected file."""
    event: dict[str, Any] = {"type": event_type, "subject": subject, "payload": payload}
    if ignored:
        event["ignored"] = True
    return {"event": event, "post": post}


def load_samples(root: Path | None = None, connector: str | None = None) -> list[Sample]:
    root = root or samples_dir()
    out: list[Sample] = []
    dirs = [root / connector] if connector else sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for d in dirs:
        for path in sorted(d.glob("*.json")):
            for i, item in enumerate(json.loads(path.read_text())):
                ev = item["event"]
                out.append(
                    Sample(
                        d.name,
                        path.stem,
                        i,
                        ev["type"],
                        ev.get("subject"),
                        ev.get("payload"),
                        bool(ev.get("ignored")),
                        item.get("post"),
                    )
                )
    return out


def context_of(sample: Sample, connectors: ConnectorCatalogue) -> dict[str, Any]:
    """What a mapping sees of a sample, as the delivery engine builds it for a stored event."""
    return mapping_context(
        payload=sample.payload,
        spec=connectors.get(sample.connector),
        event_id=f"evt_sample_{sample.index}",
        event_type=sample.type,
        source_id="src_sample",
        connector=sample.connector,
        subject=sample.subject,
        received_at=SAMPLE_TIME,
        source_name="Acme",
    )


def render_with(mapping: MappingSpec, connectors: ConnectorCatalogue, sample: Sample) -> dict[str, Any] | None:
    """The post ``mapping`` gives for a sample (None: its ``when`` skips it). Raises MappingError."""
    ctx = context_of(sample, connectors)
    if not applies(mapping, ctx):
        return None
    return render_post(mapping, ctx).model_dump(mode="json")


def render_default(mappings: MappingCatalogue, connectors: ConnectorCatalogue, sample: Sample) -> dict[str, Any] | None:
    if sample.ignored:
        return None
    return render_with(mappings.resolve(sample.connector, sample.type, None), connectors, sample)


@dataclass(frozen=True)
class Mismatch:
    sample: Sample
    got: dict[str, Any] | None
    error: str | None = None


def check(mappings: MappingCatalogue, connectors: ConnectorCatalogue, samples: Iterable[Sample]) -> list[Mismatch]:
    """Every sample whose default mapping no longer gives its committed post."""
    out: list[Mismatch] = []
    for sample in samples:
        try:
            got = render_default(mappings, connectors, sample)
        except MappingError as exc:
            out.append(Mismatch(sample, None, str(exc)))
            continue
        if got != sample.post:
            out.append(Mismatch(sample, got))
    return out


def update(mappings: MappingCatalogue, connectors: ConnectorCatalogue, root: Path | None = None) -> int:
    """Rewrite every committed post with what the mappings give now; returns how many changed."""
    root = root or samples_dir()
    changed = 0
    by_file: dict[Path, list[Any]] = {}
    for sample in load_samples(root):
        post = render_default(mappings, connectors, sample)
        changed += post != sample.post
        path = root / sample.connector / f"{sample.fixture}.json"
        by_file.setdefault(path, []).append(entry(sample.type, sample.subject, sample.payload, sample.ignored, post))
    for path, items in by_file.items():
        path.write_text(json.dumps(items, indent=2, ensure_ascii=False) + "\n")
    return changed
