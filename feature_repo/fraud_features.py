"""Feast definitions for global real-time fraud detection (project ``global_fraud``).

Two entities (``card``, ``merchant``), three feature views and one feature service.
The offline sources are Parquet files under ``data/`` (relative to the repo, written by
``generate_data.py``); ``card_spending_stats`` and ``card_merchant_affinity`` also take fresh
rows from the stream through push sources (``FeatureStore.push``).

Nothing here talks to Kafka or to the replicas: replication happens below Feast, in the online
store named in ``feature_store.yaml``. See docs/feature-repo.md.
"""

from datetime import timedelta

from feast import Entity, FeatureService, FeatureView, Field, FileSource, PushSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Bool, Float32, Float64, Int32, Int64, String, UnixTimestamp

OWNER = "fraud-ml@example.com"
TAGS = {"team": "fraud-ml", "domain": "payments"}

# Entities ----------------------------------------------------------------------------------
card = Entity(
    name="card",
    join_keys=["card_id"],
    value_type=ValueType.INT64,
    description="A payment card (tokenised PAN surrogate).",
    owner=OWNER,
    tags=TAGS,
)

merchant = Entity(
    name="merchant",
    join_keys=["merchant_id"],
    value_type=ValueType.STRING,
    description="An acquiring merchant, e.g. 'm_000042'.",
    owner=OWNER,
    tags=TAGS,
)

# Offline (batch) sources: paths are relative to the repo directory -------------------------
card_spending_source = FileSource(
    name="card_spending_stats_source",
    path="data/card_spending_stats.parquet",
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Rolling card aggregates computed by the streaming job, archived hourly.",
    owner=OWNER,
)

merchant_risk_source = FileSource(
    name="merchant_risk_source",
    path="data/merchant_risk.parquet",
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Daily merchant risk snapshot from the batch scoring job.",
    owner=OWNER,
)

card_merchant_affinity_source = FileSource(
    name="card_merchant_affinity_source",
    path="data/card_merchant_affinity.parquet",
    file_format=ParquetFormat(),
    timestamp_field="event_timestamp",
    created_timestamp_column="created",
    description="Card x merchant relationship aggregates.",
    owner=OWNER,
)

# Push sources: the streaming job pushes fresh aggregates straight to the online store -------
card_spending_push = PushSource(
    name="card_spending_push",
    batch_source=card_spending_source,
    description="Fresh card aggregates from the transaction stream.",
    owner=OWNER,
)

card_merchant_affinity_push = PushSource(
    name="card_merchant_affinity_push",
    batch_source=card_merchant_affinity_source,
    description="Fresh card x merchant aggregates from the transaction stream.",
    owner=OWNER,
)

# Feature views --------------------------------------------------------------------------
card_spending_stats = FeatureView(
    name="card_spending_stats",
    description="Short-window spending behaviour of a card.",
    entities=[card],
    ttl=timedelta(days=2),
    schema=[
        Field(name="card_id", dtype=Int64),
        Field(name="txn_count_1h", dtype=Int32, description="Transactions in the last hour."),
        Field(name="txn_count_24h", dtype=Int64, description="Transactions in the last 24h."),
        Field(name="amount_sum_24h", dtype=Float64, description="Spend in the last 24h (USD)."),
        Field(name="amount_avg_30d", dtype=Float32, description="Mean ticket over 30 days."),
        Field(name="distinct_merchants_24h", dtype=Int32),
        Field(name="foreign_txn_ratio_24h", dtype=Float32, description="Share outside home."),
        Field(name="home_country", dtype=String, description="ISO 3166-1 alpha-2."),
        Field(name="last_card_present", dtype=Bool, description="Last txn was card-present."),
        Field(name="last_txn_at", dtype=UnixTimestamp, description="Time of the last txn."),
    ],
    source=card_spending_push,
    online=True,
    owner=OWNER,
    tags={**TAGS, "freshness": "streaming"},
)

merchant_risk = FeatureView(
    name="merchant_risk",
    description="Risk profile of a merchant, refreshed daily.",
    entities=[merchant],
    ttl=timedelta(days=30),
    schema=[
        Field(name="merchant_id", dtype=String),
        Field(name="merchant_category", dtype=String, description="MCC group."),
        Field(name="country", dtype=String, description="ISO 3166-1 alpha-2."),
        Field(name="chargeback_rate_90d", dtype=Float32),
        Field(name="fraud_reports_30d", dtype=Int32),
        Field(name="risk_score", dtype=Float64, description="0..1, from the merchant model."),
        Field(name="is_high_risk", dtype=Bool, description="risk_score above 0.8."),
    ],
    source=merchant_risk_source,
    online=True,
    owner=OWNER,
    tags={**TAGS, "freshness": "daily"},
)

card_merchant_affinity = FeatureView(
    name="card_merchant_affinity",
    description="How well a card knows a merchant (keyed on card_id AND merchant_id).",
    entities=[card, merchant],
    ttl=timedelta(days=90),
    schema=[
        Field(name="card_id", dtype=Int64),
        Field(name="merchant_id", dtype=String),
        Field(name="pair_txn_count_90d", dtype=Int32),
        Field(name="pair_amount_sum_90d", dtype=Float64),
        Field(name="pair_amount_avg_90d", dtype=Float32),
        Field(name="pair_first_seen_at", dtype=UnixTimestamp),
        Field(name="pair_is_trusted", dtype=Bool, description="5+ txns, no chargeback."),
    ],
    source=card_merchant_affinity_push,
    online=True,
    owner=OWNER,
    tags={**TAGS, "freshness": "streaming"},
)

# Feature service: what the fraud model v1 reads at authorisation time ----------------------
fraud_model_v1 = FeatureService(
    name="fraud_model_v1",
    description="Features of the real-time fraud model, version 1.",
    features=[
        card_spending_stats,
        merchant_risk[["merchant_category", "chargeback_rate_90d", "risk_score", "is_high_risk"]],
        card_merchant_affinity,
    ],
    owner=OWNER,
    tags={**TAGS, "model": "fraud_gbdt", "model_version": "1"},
)
