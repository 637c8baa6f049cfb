"""Generate the synthetic Parquet files the feature repo's FileSources read.

Deterministic: the same arguments (seed, sizes and ``end``) give byte-identical files with
the same pyarrow version. All event times fall in ``[end - days, end)`` at whole seconds
(Feast stores ``UnixTimestamp`` features at second precision). ``end`` defaults to the current
time rounded down to the hour, so pass ``--end`` when you need the same bytes tomorrow.

    python generate_data.py --help
    python generate_data.py --cards 1000 --merchants 200 --days 7 --seed 7

Importable: ``generate(out_dir, n_cards=..., n_merchants=..., days=..., seed=..., end=...)``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

DEFAULT_OUT_DIR = Path(__file__).resolve().parent / "data"
CARD_ID_BASE = 4_000_000_000  # beyond Int32, so Int64 join keys are exercised
SECONDS_PER_DAY = 86_400

COUNTRIES = np.array(["US", "GB", "DE", "FR", "SG", "AU", "JP", "IN", "BR", "CA"])
COUNTRY_WEIGHTS = np.array([0.30, 0.12, 0.10, 0.08, 0.08, 0.07, 0.07, 0.07, 0.06, 0.05])
MERCHANT_CATEGORIES = np.array(
    [
        "grocery",
        "fuel",
        "restaurants",
        "electronics",
        "travel",
        "digital_goods",
        "jewelry",
        "gambling",
        "apparel",
        "pharmacy",
    ]
)
# Base risk per category, same order as MERCHANT_CATEGORIES.
CATEGORY_RISK = np.array([0.05, 0.08, 0.06, 0.30, 0.25, 0.45, 0.50, 0.60, 0.12, 0.07])

# One Parquet file per feature view, with the view's join keys.
ENTITY_KEYS: dict[str, list[str]] = {
    "card_spending_stats": ["card_id"],
    "merchant_risk": ["merchant_id"],
    "card_merchant_affinity": ["card_id", "merchant_id"],
}
FILES = tuple(ENTITY_KEYS)


@dataclass(frozen=True)
class WrittenFile:
    name: str
    path: Path
    rows: int
    bytes: int


def default_end(now: datetime | None = None) -> datetime:
    """The current time (or ``now``) rounded down to the hour, in UTC."""
    now = datetime.now(UTC) if now is None else now.astimezone(UTC)
    return now.replace(minute=0, second=0, microsecond=0)


def card_ids(n_cards: int) -> np.ndarray:
    return CARD_ID_BASE + np.arange(n_cards, dtype=np.int64)


def merchant_ids(n_merchants: int) -> np.ndarray:
    return np.array([f"m_{i:06d}" for i in range(n_merchants)], dtype=object)


def generate(
    out_dir: str | Path = DEFAULT_OUT_DIR,
    *,
    n_cards: int = 1_000,
    n_merchants: int = 200,
    days: int = 7,
    seed: int = 7,
    end: datetime | None = None,
    card_rows: int | None = None,
    pair_rows: int | None = None,
    progress: bool = False,
) -> list[WrittenFile]:
    """Write ``card_spending_stats``, ``merchant_risk`` and ``card_merchant_affinity``.

    ``card_rows`` and ``pair_rows`` default to five rows per card; ``merchant_risk`` holds one
    snapshot per merchant per day. ``end`` must be timezone-aware (naive means UTC).
    """
    if n_cards < 1 or n_merchants < 1 or days < 1:
        raise ValueError("n_cards, n_merchants and days must be at least 1")
    end_ts = pd.Timestamp(default_end() if end is None else end)
    end_ts = end_ts.tz_localize("UTC") if end_ts.tz is None else end_ts.tz_convert("UTC")
    end_ts = end_ts.floor("s")
    rng = np.random.default_rng(seed)
    cards = card_ids(n_cards)
    merchants = merchant_ids(n_merchants)
    home = rng.choice(COUNTRIES, size=n_cards, p=COUNTRY_WEIGHTS)
    merchant_category = rng.integers(0, len(MERCHANT_CATEGORIES), size=n_merchants)
    merchant_country = rng.choice(COUNTRIES, size=n_merchants, p=COUNTRY_WEIGHTS)

    frames = {
        "card_spending_stats": _card_spending(
            rng, cards, home, end_ts, days, card_rows or 5 * n_cards
        ),
        "merchant_risk": _merchant_risk(
            rng, merchants, merchant_category, merchant_country, end_ts, days
        ),
        "card_merchant_affinity": _affinity(
            rng, cards, merchants, end_ts, days, pair_rows or 5 * n_cards
        ),
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name in FILES:
        path = out / f"{name}.parquet"
        table = pa.Table.from_pandas(frames[name], preserve_index=False)
        pq.write_table(table, path, compression="snappy")
        info = WrittenFile(name, path, table.num_rows, path.stat().st_size)
        written.append(info)
        if progress:
            print(
                f"wrote {path} ({info.rows:,} rows, {info.bytes / 1024:,.0f} KiB)",
                file=sys.stderr,
            )
    return written


def _event_times(
    rng: np.random.Generator, n: int, end: pd.Timestamp, days: int
) -> pd.DatetimeIndex:
    """``n`` whole-second times in ``[end - days, end)``."""
    offsets = rng.integers(1, days * SECONDS_PER_DAY + 1, size=n)
    return end - pd.to_timedelta(offsets, unit="s")


def _created(rng: np.random.Generator, event: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Ingestion time: the event time plus 0-120 s of pipeline delay."""
    return event + pd.to_timedelta(rng.integers(0, 121, size=len(event)), unit="s")


def _finish(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per (keys, event time), sorted: 'latest row' is then unambiguous."""
    df = df.drop_duplicates(subset=[*keys, "event_timestamp"], keep="first")
    return df.sort_values(["event_timestamp", *keys], kind="stable").reset_index(drop=True)


def _card_spending(
    rng: np.random.Generator,
    cards: np.ndarray,
    home: np.ndarray,
    end: pd.Timestamp,
    days: int,
    rows: int,
) -> pd.DataFrame:
    idx = rng.integers(0, len(cards), size=rows)
    event = _event_times(rng, rows, end, days)
    count_1h = rng.poisson(1.2, size=rows).astype(np.int32)
    count_24h = (count_1h + rng.poisson(6.0, size=rows)).astype(np.int64)
    amount_avg = rng.gamma(2.0, 35.0, size=rows)
    amount_sum = np.round(count_24h * amount_avg * rng.uniform(0.6, 1.4, size=rows), 2)
    distinct = np.minimum(count_24h, rng.poisson(3.0, size=rows) + 1).astype(np.int32)
    foreign = np.where(rng.random(rows) < 0.85, 0.0, rng.uniform(0.05, 1.0, size=rows))
    since_last = pd.to_timedelta(rng.integers(0, 3_600, size=rows), unit="s")
    return _finish(
        pd.DataFrame(
            {
                "card_id": cards[idx],
                "txn_count_1h": count_1h,
                "txn_count_24h": count_24h,
                "amount_sum_24h": amount_sum.astype(np.float64),
                "amount_avg_30d": np.round(amount_avg, 2).astype(np.float32),
                "distinct_merchants_24h": distinct,
                "foreign_txn_ratio_24h": np.round(foreign, 4).astype(np.float32),
                "home_country": home[idx].astype(object),
                "last_card_present": rng.random(rows) < 0.55,
                "last_txn_at": event - since_last,
                "event_timestamp": event,
                "created": _created(rng, event),
            }
        ),
        ENTITY_KEYS["card_spending_stats"],
    )


def _merchant_risk(
    rng: np.random.Generator,
    merchants: np.ndarray,
    category: np.ndarray,
    country: np.ndarray,
    end: pd.Timestamp,
    days: int,
) -> pd.DataFrame:
    n = len(merchants)
    # One snapshot per merchant per day, ``k`` days before ``end`` plus < 1 h of job jitter.
    day = np.repeat(np.arange(1, days + 1), n)
    idx = np.tile(np.arange(n), days)
    jitter = rng.integers(0, 3_600, size=len(idx))
    event = end - pd.to_timedelta(day * SECONDS_PER_DAY - jitter, unit="s")
    base = CATEGORY_RISK[category[idx]]
    risk = np.clip(base * np.exp(rng.normal(0.0, 0.6, size=len(idx))), 0.0, 1.0)
    chargeback = np.clip(risk * 0.02 + rng.normal(0.0, 0.002, size=len(idx)), 0.0, None)
    return _finish(
        pd.DataFrame(
            {
                "merchant_id": merchants[idx],
                "merchant_category": MERCHANT_CATEGORIES[category[idx]].astype(object),
                "country": country[idx].astype(object),
                "chargeback_rate_90d": np.round(chargeback, 5).astype(np.float32),
                "fraud_reports_30d": rng.poisson(risk * 8.0).astype(np.int32),
                "risk_score": np.round(risk, 6).astype(np.float64),
                "is_high_risk": risk > 0.8,
                "event_timestamp": event,
                "created": _created(rng, event),
            }
        ),
        ENTITY_KEYS["merchant_risk"],
    )


def _affinity(
    rng: np.random.Generator,
    cards: np.ndarray,
    merchants: np.ndarray,
    end: pd.Timestamp,
    days: int,
    rows: int,
) -> pd.DataFrame:
    card_idx = rng.integers(0, len(cards), size=rows)
    # A few popular merchants take most of the traffic (Zipf-like).
    weights = 1.0 / np.arange(1, len(merchants) + 1)
    merchant_idx = rng.choice(len(merchants), size=rows, p=weights / weights.sum())
    event = _event_times(rng, rows, end, days)
    count = (rng.geometric(0.25, size=rows)).astype(np.int32)
    avg = np.round(rng.gamma(2.0, 30.0, size=rows), 2)
    first_seen = event - pd.to_timedelta(rng.integers(0, 90 * SECONDS_PER_DAY, size=rows), unit="s")
    return _finish(
        pd.DataFrame(
            {
                "card_id": cards[card_idx],
                "merchant_id": merchants[merchant_idx],
                "pair_txn_count_90d": count,
                "pair_amount_sum_90d": np.round(count * avg, 2).astype(np.float64),
                "pair_amount_avg_90d": avg.astype(np.float32),
                "pair_first_seen_at": first_seen,
                "pair_is_trusted": (count >= 5) & (rng.random(rows) < 0.97),
                "event_timestamp": event,
                "created": _created(rng, event),
            }
        ),
        ENTITY_KEYS["card_merchant_affinity"],
    )


def _parse_end(text: str) -> datetime:
    try:
        ts = pd.Timestamp(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a timestamp: {text!r}") from exc
    return (ts.tz_localize("UTC") if ts.tz is None else ts).to_pydatetime()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Write deterministic synthetic fraud features as Parquet "
        "(same arguments, same bytes).",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT_DIR, help="output directory (default: %(default)s)"
    )
    parser.add_argument("--cards", type=int, default=1_000, help="cards (default: %(default)s)")
    parser.add_argument(
        "--merchants", type=int, default=200, help="merchants (default: %(default)s)"
    )
    parser.add_argument(
        "--days", type=int, default=7, help="days of history before --end (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--end",
        type=_parse_end,
        default=None,
        help="exclusive end of the event times, ISO 8601, naive means UTC "
        "(default: now rounded down to the hour)",
    )
    parser.add_argument(
        "--card-rows", type=int, default=None, help="card_spending_stats rows (default 5 x cards)"
    )
    parser.add_argument(
        "--pair-rows",
        type=int,
        default=None,
        help="card_merchant_affinity rows (default 5 x cards)",
    )
    args = parser.parse_args(argv)
    end = default_end() if args.end is None else args.end
    print(f"generating data ending {end.isoformat()} into {args.out}", file=sys.stderr)
    try:
        generate(
            args.out,
            n_cards=args.cards,
            n_merchants=args.merchants,
            days=args.days,
            seed=args.seed,
            end=end,
            card_rows=args.card_rows,
            pair_rows=args.pair_rows,
            progress=True,
        )
    except ValueError as exc:
        parser.error(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
