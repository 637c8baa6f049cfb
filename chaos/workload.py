"""The workload: the primary's Feast write path, every call recorded in the history.

A thread calls ``ReplicatingOnlineStore.online_write_batch`` (where ``materialize``, ``push``
and ``write_to_online_store`` all end): first once for each of ``cold`` entities that are never
written again (as most features of a real store: a region that loses them stays without them
until repaired), then every ``interval`` seconds with ``rows_per_call`` entities of a hot
pool, chosen by the run's seed. Each entity's ``txn_count_1h`` feature
carries a counter that increases with every write of that entity, and its event time
increases too, so the last acknowledged value is what every region must end with.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from chaos.history import History, Op

log = logging.getLogger(__name__)

COUNTER_FEATURE = "txn_count_1h"
COLD_FIRST = 1_000_000
COLD_PER_CALL = 200


class Workload:
    def __init__(
        self,
        history: History,
        repo_config: Any,
        feature_view: Any,
        *,
        seed: int,
        entities: int = 200,
        cold: int = 1000,
        rows_per_call: int = 20,
        interval: float = 0.05,
    ) -> None:
        self.history = history
        self.repo_config = repo_config
        self.feature_view = feature_view
        self.random = random.Random(seed)
        self.pool = list(range(entities))
        self.cold = list(range(COLD_FIRST, COLD_FIRST + cold))
        self.rows_per_call = rows_per_call
        self.interval = interval
        self.counters = dict.fromkeys(self.pool + self.cold, 0)
        self.last_time = dict.fromkeys(self.pool + self.cold, datetime(2020, 1, 1, tzinfo=UTC))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="workload", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(120)

    def _loop(self) -> None:
        from replicator.feast_publisher import ReplicatingOnlineStore

        store = ReplicatingOnlineStore()
        index = 0
        for first in range(0, len(self.cold), COLD_PER_CALL):
            self._call(store, index, self.cold[first : first + COLD_PER_CALL])
            index += 1
        next_due = time.monotonic()
        while not self._stop.is_set():
            self._call(store, index, self.random.sample(self.pool, self.rows_per_call))
            index += 1
            next_due = max(next_due + self.interval, time.monotonic() - 1.0)
            self._stop.wait(max(0.0, next_due - time.monotonic()))

    def _call(self, store: Any, index: int, chosen: list[int]) -> None:
        from feast.protos.feast.types.Value_pb2 import Value

        from benchmarks.dataset import entity_key, feature_values

        rows, values = [], []
        now = datetime.now(UTC)
        for entity in chosen:
            self.counters[entity] += 1
            value = self.counters[entity]
            stamp = max(now, self.last_time[entity] + timedelta(milliseconds=1))
            self.last_time[entity] = stamp
            features = feature_values(entity)
            features[COUNTER_FEATURE] = Value(int64_val=value)
            rows.append((entity_key(entity), features, stamp, stamp))
            values.append(value)
        op = Op(index, chosen, values, self.history.now())
        try:
            store.online_write_batch(self.repo_config, self.feature_view, rows, None)
            op.outcome = "ok"
        except Exception as exc:  # every failure of the write path is recorded as indeterminate
            op.outcome = "fail"
            op.error = f"{type(exc).__name__}: {str(exc)[:200]}"
        op.completed = self.history.now()
        self.history.add_op(op)
