"""What ``replicator demo`` takes from the Feast repo, and its regional reader.

Names come from the repo's registry, never from the demo's code: the feature service, a
push source and the view it feeds, the entities to read and the files behind them. Run as
``python -m replicator.demo_repo REPO SERVICE ENTITY_ROWS_JSON``, it is the child process that
reads a region as an inference service there would (its environment says where).
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast


def feature_service(store: Any) -> Any:
    """The repo's feature service (the first by name when it has several)."""
    services = sorted(store.list_feature_services(), key=lambda s: s.name)
    if not services:
        raise SystemExit("the demo needs a feature service in the Feast repo")
    return services[0]


def source_frame(view: Any, repo: Path) -> Any:
    """The Parquet file behind a feature view's batch source."""
    import pandas as pd

    path = Path(view.batch_source.path)
    return pd.read_parquet(path if path.is_absolute() else repo / path)


def fresh_rows(store: Any, repo: Path, count: int = 200) -> tuple[str, Any]:
    """A push source of the repo and ``count`` rows of its view, stamped now."""
    import pandas as pd
    from feast.data_source import PushSource

    pushes = {s.name for s in store.list_data_sources() if isinstance(s, PushSource)}
    views = sorted(
        (
            v
            for v in store.list_feature_views()
            if v.stream_source and v.stream_source.name in pushes
        ),
        key=lambda v: v.name,
    )
    if not views:
        raise SystemExit("the demo needs a feature view fed by a push source in the Feast repo")
    view = views[0]
    frame = source_frame(view, repo).drop_duplicates(view.join_keys).head(count).copy()
    now = pd.Timestamp(datetime.now(UTC))
    frame[view.batch_source.timestamp_field] = now
    if view.batch_source.created_timestamp_column:
        frame[view.batch_source.created_timestamp_column] = now
    return view.stream_source.name, frame


def sample_entities(store: Any, service: Any, repo: Path, count: int = 25) -> list[dict[str, Any]]:
    """``count`` entities the service's views know, from the source of the view with the
    most join keys (one that joins all the service's entities, when there is one)."""
    views = [store.get_feature_view(p.name) for p in service.feature_view_projections]
    widest = max(views, key=lambda v: len(v.join_keys))
    frame = source_frame(widest, repo)[widest.join_keys].drop_duplicates().head(count)
    return cast(list[dict[str, Any]], frame.to_dict("records"))


def as_json(features: dict[str, list[Any]]) -> Any:
    """Feast's ``to_dict()`` as it crosses a process boundary (for comparisons)."""
    return json.loads(json.dumps(features, default=str))


def read_in_region(repo: str, service: str, entity_rows: str) -> int:
    """Child process of ``Demo._regional_reads``: print the service's features as JSON."""
    from feast import FeatureStore

    store = FeatureStore(repo_path=repo)
    features = store.get_online_features(
        store.get_feature_service(service), json.loads(entity_rows)
    ).to_dict()
    print(json.dumps(as_json(features)))
    return 0


if __name__ == "__main__":
    sys.exit(read_in_region(*sys.argv[1:4]))
