"""Checker settings: YAML, CONSISTENCY_* overrides, bound resolution, readable errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from consistency.config import ConsistencySettings, load_settings
from consistency.errors import SettingsError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "consistency.yaml"
    path.write_text(text)
    return path


def test_the_shipped_settings_file_loads() -> None:
    settings = load_settings(ROOT / "infra" / "consistency.yaml")
    assert settings.bounds.resolve("us-east-1", "merchant_risk").max_freshness_seconds == 172800
    assert (
        settings.bounds.resolve("ap-southeast-1", "card_spending_stats").max_staleness_seconds == 10
    )


def test_most_specific_bound_wins(tmp_path: Path) -> None:
    settings = load_settings(
        write(
            tmp_path,
            """
consistency:
  bounds:
    max_staleness_seconds: 5
    max_divergence_ratio: 0.001
    feature_views:
      v: {max_staleness_seconds: 7, max_freshness_seconds: 60}
    regions:
      eu-west-1:
        max_staleness_seconds: 9
        feature_views:
          v: {max_divergence_ratio: 0.5}
""",
        )
    )
    b = settings.bounds
    assert b.resolve("us-east-1", "w").model_dump() == {
        "max_staleness_seconds": 5,
        "max_divergence_ratio": 0.001,
        "max_freshness_seconds": None,
    }
    assert b.resolve("us-east-1", "v").max_staleness_seconds == 7
    assert b.resolve("eu-west-1", "v").model_dump() == {
        "max_staleness_seconds": 9,
        "max_divergence_ratio": 0.5,
        "max_freshness_seconds": 60,
    }


def test_null_switches_a_bound_off(tmp_path: Path) -> None:
    path = write(tmp_path, "bounds:\n  regions:\n    eu-west-1: {max_staleness_seconds: null}\n")
    assert load_settings(path).bounds.resolve("eu-west-1", "v").max_staleness_seconds is None
    assert load_settings(path).bounds.resolve("us-east-1", "v").max_staleness_seconds == 5


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(
        tmp_path,
        "consistency:\n  bounds:\n    regions:\n      eu-west-1: {max_staleness_seconds: 9}\n",
    )
    monkeypatch.setenv("CONSISTENCY_BOUNDS__MAX_STALENESS_SECONDS", "3")
    monkeypatch.setenv("CONSISTENCY_BOUNDS__REGIONS__EU_WEST_1__MAX_STALENESS_SECONDS", "11")
    monkeypatch.setenv("CONSISTENCY_WEBHOOK__URL", "http://127.0.0.1:9/hook")
    monkeypatch.setenv("CONSISTENCY_SCHEDULE__STALENESS_SECONDS", "0.5")
    settings = load_settings(path)
    assert settings.bounds.resolve("us-east-1", "v").max_staleness_seconds == 3
    assert settings.bounds.resolve("eu-west-1", "v").max_staleness_seconds == 11
    assert settings.webhook.url == "http://127.0.0.1:9/hook"
    assert settings.schedule.staleness_seconds == 0.5


def test_settings_file_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONSISTENCY_CONFIG", str(write(tmp_path, "sample: {size: 77}\n")))
    assert load_settings().sample.size == 77


def test_a_missing_default_file_means_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CONSISTENCY_CONFIG", raising=False)
    assert load_settings() == ConsistencySettings()


def test_a_missing_named_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="not found"):
        load_settings(tmp_path / "nope.yaml")


def test_bad_yaml_names_the_line(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="line 2, column 7"):
        load_settings(write(tmp_path, "bounds:\n  a: 1: 2\n"))


def test_bad_values_name_the_field(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(write(tmp_path, "bounds: {max_staleness_seconds: -1}\nsample: {sise: 3}\n"))
    text = str(err.value)
    assert "bounds.max_staleness_seconds" in text
    assert "sample.sise" in text


def test_a_bad_cron_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="full_cron"):
        load_settings(write(tmp_path, "schedule: {full_cron: '* *'}\n"))


def test_version_skew_bound_defaults_overrides_and_switches_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ConsistencySettings().bounds.max_version_skew("eu-west-1") == 900
    shipped = load_settings(ROOT / "infra" / "consistency.yaml").bounds
    assert shipped.max_version_skew("eu-west-1") == 900
    path = write(
        tmp_path,
        "bounds:\n  regions:\n    eu-west-1: {max_version_skew_seconds: 3600}\n"
        "    ap-southeast-1: {max_version_skew_seconds: null}\n",
    )
    bounds = load_settings(path).bounds
    assert bounds.max_version_skew("eu-west-1") == 3600
    assert bounds.max_version_skew("ap-southeast-1") is None
    assert bounds.max_version_skew("us-east-1") == 900
    monkeypatch.setenv("CONSISTENCY_BOUNDS__MAX_VERSION_SKEW_SECONDS", "0.5")
    monkeypatch.setenv("CONSISTENCY_BOUNDS__REGIONS__EU_WEST_1__MAX_VERSION_SKEW_SECONDS", "60")
    bounds = load_settings(path).bounds
    assert bounds.max_version_skew("us-east-1") == 0.5
    assert bounds.max_version_skew("eu-west-1") == 60


def test_version_skew_is_not_a_feature_view_bound(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"bounds\.feature_views\.v\.max_version_skew_seconds"):
        load_settings(
            write(tmp_path, "bounds:\n  feature_views:\n    v: {max_version_skew_seconds: 1}\n")
        )
