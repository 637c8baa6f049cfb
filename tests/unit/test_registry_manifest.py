"""The schema manifest ``registry sync`` builds lists every view Feast writes online
(replicator/registry_sync.py), with the fingerprint the publisher stamps on its rows."""

from __future__ import annotations

import inspect
import warnings
from datetime import timedelta

import pandas as pd
from feast import (
    Entity,
    FeatureView,
    Field,
    FileSource,
    OnDemandFeatureView,
    PushSource,
    StreamFeatureView,
    ValueType,
)
from feast.protos.feast.core.Registry_pb2 import Registry
from feast.types import Int64

from replicator import feast_layout
from replicator.core.feast_settings import FeastSettings
from replicator.registry_sync import build_manifest


def doubled(inputs: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"doubled": inputs["f"] * 2})


def _views() -> dict[str, object]:
    card = Entity(name="card", join_keys=["card_id"], value_type=ValueType.INT64)
    source = FileSource(name="s", path="s.parquet", timestamp_field="event_timestamp")
    push = PushSource(name="push", batch_source=source)
    schema = [Field(name="card_id", dtype=Int64), Field(name="f", dtype=Int64)]
    plain = FeatureView(name="plain", entities=[card], schema=schema, source=source)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stream feature views are "alpha"
        stream = StreamFeatureView(
            name="stream",
            entities=[card],
            schema=schema,
            source=push,
            ttl=timedelta(0),
            timestamp_field="event_timestamp",
        )

    def on_demand(name: str, written: bool) -> OnDemandFeatureView:
        return OnDemandFeatureView(
            name=name,
            entities=[card],
            sources=[plain],
            schema=[Field(name="doubled", dtype=Int64)],
            udf=doubled,
            udf_string=inspect.getsource(doubled),
            mode="pandas",
            write_to_online_store=written,
        )

    return {
        "plain": plain,
        "stream": stream,
        "written": on_demand("written", True),
        "computed": on_demand("computed", False),
    }


def test_every_view_feast_writes_online_is_in_the_manifest_with_the_publishers_fingerprint() -> (
    None
):
    registry = Registry()
    published = {}  # the views as the publisher gets them from Feast's registry
    for name, view in _views().items():
        proto = view.to_proto()  # type: ignore[attr-defined]
        proto.spec.project = "p"
        {
            FeatureView: registry.feature_views,
            StreamFeatureView: registry.stream_feature_views,
            OnDemandFeatureView: registry.on_demand_feature_views,
        }[type(view)].append(proto)
        published[name] = type(view).from_proto(proto)

    manifest = build_manifest(registry.SerializeToString(), "p", FeastSettings())

    # Rows of an on-demand view without write_to_online_store never reach Redis.
    assert manifest["feature_views"] == {
        name: feast_layout.schema_fingerprint(published[name], name)
        for name in ("plain", "stream", "written")
    }
