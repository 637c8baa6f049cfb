"""What a run records: every write call with its outcome, nemesis events, checker samples.

Times are seconds since the run began (``time.monotonic()`` based). A history is written as
one JSON file per run (``chaos-runs/<run>/history.json``), so a failure can be replayed from
its seed and judged again without re-running it.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class Op:
    """One Feast write call: ``values[i]`` written for ``entities[i]``."""

    index: int
    entities: list[int]
    values: list[int]
    invoked: float
    completed: float = 0.0
    outcome: str = "pending"
    """``ok`` (the call returned: acknowledged), ``fail`` (it raised: indeterminate)."""
    error: str = ""


@dataclass
class Event:
    at: float
    kind: str
    """``fault-start``, ``fault-end``, ``note``."""
    detail: str = ""


@dataclass
class Sample:
    """One read of the checker's ``/api/status``: region -> status, or None (no answer)."""

    at: float
    regions: dict[str, str] | None
    staleness: dict[str, Any] = field(default_factory=dict)
    error: str = ""


@dataclass
class History:
    fault: str
    seed: int
    commit: str
    began_wall: float = field(default_factory=time.time)
    ops: list[Op] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._began = time.monotonic()
        self._lock = threading.Lock()

    def now(self) -> float:
        return round(time.monotonic() - self._began, 3)

    def event(self, kind: str, detail: str = "") -> float:
        at = self.now()
        with self._lock:
            self.events.append(Event(at, kind, detail))
        return at

    def add_op(self, op: Op) -> None:
        with self._lock:
            self.ops.append(op)

    def add_sample(self, sample: Sample) -> None:
        with self._lock:
            self.samples.append(sample)

    def first(self, kind: str) -> float | None:
        return next((e.at for e in self.events if e.kind == kind), None)

    def to_dict(self) -> dict[str, Any]:
        with self._lock:
            return {
                "fault": self.fault,
                "seed": self.seed,
                "commit": self.commit,
                "began_wall": self.began_wall,
                "ops": [asdict(op) for op in self.ops],
                "events": [asdict(e) for e in self.events],
                "samples": [asdict(s) for s in self.samples],
            }

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")
