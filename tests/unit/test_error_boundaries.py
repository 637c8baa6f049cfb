"""Library exceptions become the project's own at the adapter, and each has its exit code.

S3 (botocore) and Kafka admin failures are classified by class (transient vs permanent), the
schema catalog says "cannot tell" instead of "unknown" when S3 is down, and the command line
prints one line and the exit code its ``--help`` documents.
"""

from __future__ import annotations

import concurrent.futures
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from fakes import (
    FINGERPRINT,
    TOPIC,
    VIEW,
    FakeCatalog,
    FakeDeadLetters,
    FakeSource,
    FakeStore,
    heartbeat_message,
    make_batch,
    make_row,
)
from fakes import rows_message as fake_rows_message

from replicator import cli
from replicator.adapters.kafka_publisher import KafkaPublisher
from replicator.adapters.s3 import S3ObjectStore
from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import S3Location
from replicator.core.records import Heartbeat
from replicator.core.staleness import (
    AppliedHeartbeat,
    Emission,
    TopicEmission,
    partition_staleness,
)
from replicator.errors import (
    ConfigError,
    Incomplete,
    KafkaUnavailable,
    ObjectStoreRefused,
    ObjectStoreUnavailable,
    PrerequisiteError,
    PublishError,
    ReplicatorError,
    StackError,
    TransientError,
)
from replicator.worker import Worker, WorkerOptions

NOW_NS = 1_700_000_000 * 10**9
LOCATION = S3Location(
    endpoint_url="http://127.0.0.1:1", bucket="b", access_key_id="k", secret_access_key="s"
)


def client_error(code: str, status: int) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "GetObject",
    )


class RaisingClient:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_object(self, **_: Any) -> Any:
        raise self.error

    put_object = delete_object = get_object


# The S3 adapter ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), ObjectStoreUnavailable),
        (client_error("InternalError", 500), ObjectStoreUnavailable),
        (client_error("SlowDown", 503), ObjectStoreUnavailable),
        (client_error("AccessDenied", 403), ObjectStoreRefused),
        (client_error("NoSuchBucket", 404), ObjectStoreRefused),
        (NoCredentialsError(), ObjectStoreRefused),
    ],
)
@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_s3_failures_become_ours_by_class(
    error: Exception, expected: type[ReplicatorError], method: str
) -> None:
    store = S3ObjectStore("b", lambda: RaisingClient(error))
    call = {"get": lambda: store.get("k"), "put": lambda: store.put("k", b"x")}.get(
        method, lambda: store.delete("k")
    )
    with pytest.raises(expected) as info:
        call()
    assert "s3://b/k" in str(info.value)
    assert isinstance(info.value.__cause__, type(error))
    assert isinstance(info.value, TransientError) == (expected is ObjectStoreUnavailable)


def test_a_missing_object_is_none_not_an_error() -> None:
    store = S3ObjectStore("b", lambda: RaisingClient(client_error("NoSuchKey", 404)))
    assert store.get("k") is None


# The schema catalog --------------------------------------------------------------------
class FlakyStore:
    """An ObjectStore whose reads fail while ``down`` is set."""

    bucket = "b"

    def __init__(self, body: bytes | None) -> None:
        self.body = body
        self.down = True

    def where(self, key: str = "") -> str:
        return f"s3://b/{key}"

    def get(self, key: str) -> bytes | None:
        if self.down:
            raise ObjectStoreUnavailable("s3 down", service="s3://b")
        return self.body

    def put(self, key: str, body: bytes, *, content_type: str | None = None) -> None: ...
    def delete(self, key: str) -> None: ...
    def keys(self, prefix: str) -> list[str]:
        return []


MANIFEST = b'{"version": "v1", "feature_views": {"%s": "%s"}}' % (
    VIEW.encode(),
    FINGERPRINT.encode(),
)


def test_the_catalog_says_it_cannot_tell_while_s3_is_down_never_unknown() -> None:
    store = FlakyStore(MANIFEST)
    catalog = S3ManifestCatalog(LOCATION, "p", store=store, min_refresh_seconds=3600)
    for _ in range(2):  # a failed read does not start the refresh interval
        with pytest.raises(ObjectStoreUnavailable):
            catalog.is_known(VIEW, FINGERPRINT)
    store.down = False
    assert catalog.is_known(VIEW, FINGERPRINT)


def test_a_corrupt_manifest_is_refused_with_the_command_that_repairs_it() -> None:
    store = FlakyStore(b"{not json")
    store.down = False
    catalog = S3ManifestCatalog(LOCATION, "p", store=store)
    with pytest.raises(ObjectStoreRefused, match="replicator registry sync"):
        catalog.refresh()


def test_a_worker_retries_while_the_catalog_cannot_answer_and_dead_letters_nothing() -> None:
    class CatalogDownTwice:
        calls = 0

        def is_known(self, feature_view: str, fingerprint: str) -> bool:
            self.calls += 1
            if self.calls <= 2:
                raise ObjectStoreUnavailable("s3 down", service="s3://b")
            return True

    row = make_row(b"entity-1", 1_700_000_000)
    source = FakeSource([fake_rows_message(make_batch([row]), 7)])
    store, dead = FakeStore(), FakeDeadLetters()
    worker = Worker(
        "eu-west-1",
        source=source,
        store=store,
        dead_letters=dead,
        catalog=CatalogDownTwice(),
        options=WorkerOptions(partitions=1, max_backoff_seconds=0.001, publish_stats=False),
        clock=lambda: 1_700_000_000 * 10**9,
    )
    worker.step()
    assert dead.sent == []
    assert b"entity-1" in store.hashes
    assert source.commits[-1] == {(source_topic(source), 0): 8}


def source_topic(source: FakeSource) -> str:
    return next(iter(source.commits[-1]))[0]


# Kafka admin calls ---------------------------------------------------------------------
def test_a_topic_creation_without_answer_is_kafka_unavailable_not_a_timeout_error() -> None:
    class SilentFuture:
        def result(self, timeout: float | None = None) -> None:
            raise concurrent.futures.TimeoutError

    class SilentAdmin:
        def create_topics(self, topics: list[Any], **_: Any) -> dict[str, SilentFuture]:
            return {t.topic: SilentFuture() for t in topics}

    publisher = KafkaPublisher("127.0.0.1:1", client_id="t")
    publisher._admin = SilentAdmin()  # type: ignore[assignment]
    with pytest.raises(KafkaUnavailable, match="no answer creating topic t1"):
        publisher.ensure_topics(["t1"], 1, 1)


# The command line ----------------------------------------------------------------------
ERRORS = [
    (ConfigError("bad field"), cli.EXIT_USAGE),
    (PrerequisiteError("no java"), cli.EXIT_USAGE),
    (ObjectStoreUnavailable("s3 down", service="s3://b"), cli.EXIT_UNAVAILABLE),
    (KafkaUnavailable("kafka down", service="kafka"), cli.EXIT_UNAVAILABLE),
    (PublishError("not acknowledged"), cli.EXIT_UNAVAILABLE),
    (Incomplete("2 partitions not replayed"), cli.EXIT_INCOMPLETE),
    (ObjectStoreRefused("access denied", where="s3://b"), cli.EXIT_REFUSED),
    (StackError("kafka did not start"), cli.EXIT_REFUSED),
]


@pytest.mark.parametrize(("error", "code"), ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_each_error_class_exits_with_its_documented_code_in_one_line(
    error: ReplicatorError,
    code: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from replicator import models  # no Feast import: fast

    def fail(*_: Any, **__: Any) -> Any:
        raise error

    monkeypatch.setattr(models.ModelStore, "live", fail)
    assert cli.main(["--config", "infra/topology.yaml", "models", "status", "--name", "m"]) == code
    assert capsys.readouterr().err == f"replicator: error: {error}\n"


def test_help_documents_every_exit_code() -> None:
    text = cli.build_parser().format_help()
    documented = {code for code, _ in cli.EXIT_CODES}
    assert {code for _, code in ERRORS} <= documented
    for code, meaning in cli.EXIT_CODES:
        assert f"  {code}  {meaning}" in text


# Forged heartbeats ---------------------------------------------------------------------
FORGED = 2**63 - 1


def heartbeat_rig(*messages: Any) -> tuple[Worker, FakeStore, FakeDeadLetters]:
    store, dead = FakeStore(), FakeDeadLetters()
    worker = Worker(
        "eu-west-1",
        source=FakeSource(list(messages)),
        store=store,
        dead_letters=dead,
        catalog=FakeCatalog(),
        options=WorkerOptions(partitions=1, publish_stats=False, max_heartbeat_lead_seconds=60),
        clock=lambda: NOW_NS,
    )
    return worker, store, dead


def test_a_forged_far_future_heartbeat_is_dead_lettered_and_never_stored() -> None:
    real = Heartbeat(sequence=5, emitted_ns=NOW_NS - 10**9)
    worker, store, dead = heartbeat_rig(
        heartbeat_message(real, 1), heartbeat_message(Heartbeat(FORGED, FORGED), 2)
    )
    worker.step()
    assert [(d.reason, d.offset) for d in dead.sent] == [("implausible_heartbeat", 2)]
    assert worker.stats.dead_letter_reasons == {"implausible_heartbeat": 1}
    assert store.heartbeats[(TOPIC, 0)]["emitted_ns"] == real.emitted_ns


def test_a_real_heartbeat_replaces_a_forged_stamp_already_stored() -> None:
    worker, store, _ = heartbeat_rig(heartbeat_message(Heartbeat(6, NOW_NS), 3))
    store.heartbeats[(TOPIC, 0)] = {"sequence": FORGED, "emitted_ns": FORGED, "applied_ns": 0}
    worker.step()
    assert store.heartbeats[(TOPIC, 0)]["emitted_ns"] == NOW_NS


def test_an_old_heartbeat_replayed_late_still_does_not_move_the_stamp_back() -> None:
    worker, store, _ = heartbeat_rig(heartbeat_message(Heartbeat(1, NOW_NS - 3600 * 10**9), 0))
    store.heartbeats[(TOPIC, 0)] = {"sequence": 9, "emitted_ns": NOW_NS, "applied_ns": 0}
    worker.step()
    assert store.heartbeats[(TOPIC, 0)]["emitted_ns"] == NOW_NS


def test_the_checker_does_not_believe_a_stamp_the_primary_never_emitted() -> None:
    emission = Emission(sequence=100, emitted_ns=NOW_NS, interval_ns=10**9)
    forged = AppliedHeartbeat(FORGED, FORGED)
    first = emission.emitted_ns - 30 * 10**9
    with_topic = Emission(100, NOW_NS, 10**9, {TOPIC: TopicEmission(1, first)})
    assert partition_staleness(with_topic, TOPIC, forged) == 30.0
    assert partition_staleness(emission, TOPIC, AppliedHeartbeat(99, NOW_NS - 2 * 10**9)) == 2.0
    in_flight = AppliedHeartbeat(101, NOW_NS + 10**9)  # durable in Kafka, not yet recorded
    assert partition_staleness(emission, TOPIC, in_flight) == 0.0


def test_only_adapters_and_the_local_stack_import_boto() -> None:
    root = Path(__file__).resolve().parents[2] / "replicator"
    offenders = [
        str(path.relative_to(root))
        for path in sorted(root.rglob("*.py"))
        if path.parent.name not in ("adapters", "stack")
        and any(
            line.lstrip().startswith(("import boto", "from boto"))
            for line in path.read_text(encoding="utf-8").splitlines()
        )
    ]
    assert offenders == []
