"""Differential parity with Feast (issue 8): generated Feast repos and writes, byte for byte.

Every example is a generated ``Scenario`` (differential/generate.py) made through the primary's
replicating store and through Feast's own RedisOnlineStore into a reference Redis; every key
of every region must then hold exactly what the replicator's rule gives, which differs from
what Feast wrote only as docs/replication.md ("Intended differences from Feast") lists, and
expire as Feast's keys do (differential/__init__.py). Each intended difference is shown on
its own below.

The replicator's side runs two ways (differential/replicas.py): ``worker`` (the worker's own
apply path on a Redis of this module's own, no Kafka or S3) and ``pipeline`` (Kafka, running
workers and every region of the local stack). ``make test`` runs the CI profile (20 examples,
derandomized) for the worker variant and a quarter of that for the pipeline; ``make fuzz``
runs 2,000 and 500 (tests/conftest.py, docs/replication.md).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from differential.generate import scenarios
from differential.replicas import PipelineReplica, WorkerReplica
from differential.runner import Outcome, Replica, run
from differential.scenario import SAME_AS_EVENT, Moment, Row, Scenario, View, Write
from feast.infra.online_stores.helpers import _mmh3
from feast.protos.feast.types.Value_pb2 import Value
from harness import ReferenceRedis, ReplicatedProject
from hypothesis import given, settings
from private_redis import PrivateRedis

pytestmark = [pytest.mark.slow, pytest.mark.differential]


@pytest.fixture(scope="module")
def region_server(
    config_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateRedis]:
    """The worker variant's region: a redis-server of this module's own, the stack's ACL users."""
    holder = ReplicatedProject(config_file, tmp_path_factory.mktemp("region"))
    server = PrivateRedis(holder, holder.topology.primary_region, tmp_path_factory.mktemp("redis"))
    server.without_persistence()
    yield server
    server.stop()


@pytest.fixture(scope="module", params=["worker", "pipeline"])
def replica(request: pytest.FixtureRequest) -> Replica:
    if request.param == "worker":
        return WorkerReplica(request.getfixturevalue("region_server"))
    request.getfixturevalue("topology")  # the local stack, running
    return PipelineReplica()


@pytest.fixture(scope="module")
def diff(
    replica: Replica,
    reference: ReferenceRedis,
    config_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Any:
    """``diff(scenario)``: run it on a fresh project (its own name, topics and keys)."""
    base = tmp_path_factory.mktemp("examples")

    def diff(scenario: Scenario) -> Outcome:
        workdir = Path(tempfile.mkdtemp(dir=base))
        project = ReplicatedProject(config_file, workdir, feast=scenario.feast_settings())
        try:
            return run(scenario, replica, project, reference)
        finally:
            replica.close(project)
            shutil.rmtree(workdir, ignore_errors=True)

    return diff


PIPELINE_SHARE = 4
"""The pipeline variant runs a quarter of the profile's examples: each one is a new project
(topics, a registry release to every bucket, three workers joining their groups), seconds
where the worker variant needs a fraction of one; the worker variant covers the breadth."""


def test_generated_writes_reach_every_region_as_feast_writes_them(
    diff: Any, replica: Replica
) -> None:
    budget = settings().max_examples
    if replica.name == "pipeline":
        budget = max(1, budget // PIPELINE_SHARE)

    @settings(max_examples=budget)
    @given(scenario=scenarios())
    def examples(scenario: Scenario) -> None:
        diff(scenario)

    examples()


# Each intended difference, shown -----------------------------------------------------------
T = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
LATER = Moment(at=T + timedelta(minutes=1))


def _one_view(*writes: Write, key_type: str = "int64") -> Scenario:
    return Scenario(
        entities=(("card", key_type),),
        views=(View("risk", (0,), (("score", "string"),)),),
        steps=writes,
    )


def _row(score: str, event: Moment, created: Moment | str | None = None) -> Row:
    return Row((7,), (score,), event, created)


def _scores(state: dict[bytes, dict[bytes, bytes]]) -> list[str]:
    field = bytes(_mmh3("risk:score"))
    return [Value.FromString(fields[field]).string_val for fields in state.values()]


@pytest.mark.parametrize(
    ("path", "first", "second"),
    [
        ("write_to_online_store", Moment(at=T), LATER),  # a later created time
        ("push", None, Moment(at=T)),  # a created time beats a null one
        ("online_write_batch", None, None),  # two null created times: the log position
    ],
)
def test_a_correction_with_the_same_event_time_reaches_regions_where_feast_drops_it(
    diff: Any, path: str, first: Moment | None, second: Moment | None
) -> None:
    if path == "online_write_batch":
        first_row = Row((7,), (Value(string_val="first"),), Moment(at=T), first)
        second_row = Row((7,), (Value(string_val="fixed"),), Moment(at=T), second)
    else:
        first_row, second_row = (
            _row("first", Moment(at=T), first),
            _row("fixed", Moment(at=T), second),
        )
    outcome = diff(_one_view(Write(path, 0, (first_row,)), Write(path, 0, (second_row,))))
    assert _scores(outcome.feast) == ["first"]
    assert _scores(outcome.replicated) == ["fixed"]


def test_a_row_before_1970_is_not_overwritten_by_an_older_one_where_feast_overwrites_it(
    diff: Any,
) -> None:
    newer, older = (
        Moment(at=datetime(1960, 1, 1, tzinfo=UTC)),
        Moment(at=datetime(1950, 1, 1, tzinfo=UTC)),
    )
    outcome = diff(
        _one_view(
            Write("write_to_online_store", 0, (_row("1960", newer, SAME_AS_EVENT),)),
            Write("push", 0, (_row("1950", older, SAME_AS_EVENT),)),
        )
    )
    assert _scores(outcome.feast) == ["1950"]  # Feast reads a stored pre-1970 time as none
    assert _scores(outcome.replicated) == ["1960"]


def test_a_write_with_a_row_far_ahead_of_the_clock_is_refused_whole(diff: Any) -> None:
    ahead = Moment(offset_s=9 * 3600)  # a naive local time of a UTC+9 host
    rows = (_row("now", Moment(offset_s=0)), Row((8,), ("ahead",), ahead, None))
    outcome = diff(_one_view(Write("write_to_online_store", 0, rows, naive=True)))
    [refused] = outcome.refused
    assert (refused.feature_view, refused.entity) == ("risk", "card=8")
    assert sorted(_scores(outcome.feast)) == ["ahead", "now"]
    assert outcome.replicated == {}


def test_a_write_with_a_row_larger_than_a_record_is_refused_whole(diff: Any) -> None:
    huge = "x" * (8 * 1024 * 1024 + 1)
    rows = (_row("small", Moment(at=T)), Row((8,), (huge,), Moment(at=T), None))
    outcome = diff(_one_view(Write("push", 0, rows)))
    [refused] = outcome.refused
    assert (refused.feature_view, refused.entity) == ("risk", "card=8")
    assert len(outcome.feast) == 2
    assert outcome.replicated == {}


def test_stream_and_on_demand_views_reach_every_region(diff: Any) -> None:
    """Issue 8, item 7: their rows are in the manifest's schemas, not dead-lettered."""
    scenario = Scenario(
        entities=(("card", "int64"),),
        views=(
            View("stream", (0,), (("score", "string"),), stream=True),
            View("base", (0,), (("amount", "float64"),), on_demand=True),
        ),
        steps=(
            Write("push", 0, (_row("pushed", Moment(at=T)),)),
            Write(
                "write_to_online_store",
                1,
                (Row((7,), (12.5,), Moment(at=T), None),),
                on_demand=True,
            ),
        ),
    )
    outcome = diff(scenario)
    [fields] = outcome.replicated.values()
    assert {b"_ts:stream", b"_ts:base_od"} <= fields.keys()
    assert outcome.replicated == outcome.feast
