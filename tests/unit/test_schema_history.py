"""A region admits rows of each view's recent schema versions (replicator/core/schema_history.py),
carried from its previous manifest on every release, through the catalog workers read."""

from __future__ import annotations

import json

from replicator.adapters.s3_catalog import S3ManifestCatalog
from replicator.config import S3Location
from replicator.core.keys import manifest_key
from replicator.core.schema_history import RECENT_SCHEMA_VERSIONS, admitted, carried


def _release(previous: dict | None, live: dict[str, str]) -> dict:
    """The manifest a release of a registry with ``live`` schemas writes over ``previous``."""
    return {"feature_views": live, "recent_schemas": carried(live, previous)}


def test_each_release_keeps_the_schemas_a_view_had_before_newest_first() -> None:
    manifest = _release(None, {"a": "a1", "b": "b1"})
    manifest = _release(manifest, {"a": "a2", "b": "b1"})
    manifest = _release(manifest, {"a": "a3", "b": "b1"})

    assert admitted(manifest) == {"a": ["a3", "a2", "a1"], "b": ["b1"]}


def test_a_view_keeps_only_its_last_versions() -> None:
    manifest = None
    for n in range(RECENT_SCHEMA_VERSIONS + 3):
        manifest = _release(manifest, {"a": f"a{n}"})
    assert manifest is not None
    newest = RECENT_SCHEMA_VERSIONS + 2

    assert admitted(manifest)["a"] == [f"a{n}" for n in range(newest, 2, -1)]


def test_a_rollback_admits_the_schema_rolled_back_from() -> None:
    manifest = _release(_release(None, {"a": "a1"}), {"a": "a2"})

    assert admitted(_release(manifest, {"a": "a1"}))["a"] == ["a1", "a2"]


def test_a_view_removed_from_the_registry_is_no_longer_admitted() -> None:
    manifest = _release(_release(None, {"a": "a1", "gone": "g1"}), {"a": "a1"})

    assert admitted(manifest) == {"a": ["a1"]}


def test_a_manifest_written_before_the_history_admits_its_live_schemas() -> None:
    older = {"version": "v1", "feature_views": {"a": "a1"}}

    assert admitted(older) == {"a": ["a1"]}
    assert admitted(_release(older, {"a": "a2"})) == {"a": ["a2", "a1"]}


def test_an_unreadable_history_is_replaced_by_the_release() -> None:
    broken = {"feature_views": {"a": "a1"}, "recent_schemas": {"a": "not a list"}}

    assert carried({"a": "a2"}, broken) == {"a": ["a2"]}


class _Bucket:
    """A region's bucket holding one manifest (``core.ports.ObjectStore``, the parts read)."""

    def __init__(self, manifest: dict) -> None:
        self.body = json.dumps(manifest).encode()

    def get(self, key: str) -> bytes | None:
        return self.body if key == manifest_key("p") else None

    def where(self, key: str = "") -> str:
        return f"memory://{key}"


def test_the_catalog_knows_every_recent_schema_of_a_view_and_no_other() -> None:
    manifest = _release(_release(None, {"a": "a1"}), {"a": "a2"})
    location = S3Location(
        endpoint_url="http://127.0.0.1:1", bucket="b", access_key_id="k", secret_access_key="s"
    )
    catalog = S3ManifestCatalog(location, "p", min_refresh_seconds=0, store=_Bucket(manifest))  # type: ignore[arg-type]

    assert catalog.is_known("a", "a2") and catalog.is_known("a", "a1")
    assert not catalog.is_known("a", "never-released")
    assert not catalog.is_known("b", "a1")
