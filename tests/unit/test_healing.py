"""The data-loss guard's decisions, with in-memory marks and group positions."""

from __future__ import annotations

from replicator.healing import DataLossGuard, Partition, lost

TP = ("feast.p.view", 0)


class Marks:
    def __init__(self) -> None:
        self.stored: dict[Partition, int] = {}

    def raise_marks(
        self, positions: dict[Partition, int], floors: dict[Partition, int]
    ) -> dict[Partition, int]:
        refused = {}
        for tp, offset in positions.items():
            stored = self.stored.get(tp, 0)
            if stored < floors.get(tp, -1):
                refused[tp] = stored
            else:
                self.stored[tp] = max(stored, offset)
        return refused

    def read_marks(self, partitions: list[Partition]) -> dict[Partition, int]:
        return {tp: self.stored[tp] for tp in partitions if tp in self.stored}


class Group:
    def __init__(self) -> None:
        self.committed: dict[Partition, int] = {}
        self.rewinds: list[tuple[str, int, int]] = []

    def rewind(self, topic: str, partition: int, offset: int) -> int:
        self.rewinds.append((topic, partition, offset))
        return offset


def test_a_mark_below_the_committed_offset_means_lost_rows() -> None:
    assert lost({TP: 10}, {TP: 10}) == {}
    assert lost({TP: 4}, {TP: 10}) == {TP: 4}
    assert lost({}, {TP: 10}) == {TP: 0}
    assert lost({}, {}) == {}


def _guard(policy: str) -> tuple[DataLossGuard, Marks, Group]:
    marks, group = Marks(), Group()
    guard = DataLossGuard("r", marks, group, policy=policy, check_seconds=0)  # type: ignore[arg-type]
    assert guard.marked({TP: 10}) == {TP: 10}
    group.committed[TP] = 10
    return guard, marks, group


def test_replay_rewinds_to_the_surviving_mark_and_commits_only_past_the_old_offset() -> None:
    guard, marks, group = _guard("replay")
    marks.stored.clear()  # FLUSHALL
    guard.poll()
    assert group.rewinds == [(TP[0], TP[1], 0)]
    assert guard.marked({TP: 5}) == {TP: 5}  # the source commits forwards only
    assert TP in guard.healing
    guard.marked({TP: 10})
    assert guard.healing == {} and guard.detected == 1


def test_alert_holds_the_partition_until_the_marks_are_back() -> None:
    guard, marks, group = _guard("alert")
    marks.stored.clear()
    assert guard.marked({TP: 12}) == {}, "nothing committed after a loss"
    assert guard.holds(TP) and group.rewinds == []
    assert guard.summary()["data_lost_partitions"] == 1
    marks.stored[TP] = 12  # replicator region rebuild raised it
    guard.poll()
    assert not guard.holds(TP)
    assert guard.marked({TP: 13}) == {TP: 13}
