"""The feature registry (vars.features): one definition that dbt, the docs and the ML code share."""

from __future__ import annotations

import pytest
import yaml

from sparkify import features as registry
from sparkify.settings import PROJECT_ROOT


def test_generated_column_docs_are_current():
    assert registry.main(["--check"]) == 0


def test_docs_describe_exactly_the_registry_columns_after_the_hand_written_keys():
    docs = yaml.safe_load(registry.DOCS_PATH.read_text())["models"][0]["columns"]
    names = [c["name"] for c in docs]
    generated = [f.name for f in registry.columns()]
    assert names[-len(generated):] == generated
    assert len(set(names)) == len(names)


def test_every_metric_gets_each_window_and_per_day_rates_only_where_asked():
    metrics = yaml.safe_load((PROJECT_ROOT / "dbt_project.yml").read_text())["vars"]["features"]["metrics"]
    names = {f.name for f in registry.columns()}
    for metric, spec in metrics.items():
        assert {f"{metric}_{w}" for w in ("7d", "14d", "28d", "lifetime")} <= names
        assert (f"{metric}_per_day_28d" in names) == bool(spec.get("per_day"))
    assert "logouts_per_day_28d" in names and "songs_lifetime" in names and "songs_per_day_lifetime" not in names


def test_unknown_feature_is_a_clear_error():
    with pytest.raises(KeyError, match="not a feature of user_features"):
        registry.get("minutes_on_the_moon_28d")


@pytest.mark.spark
def test_user_features_columns_are_the_registry_columns(built_lakehouse, spark):
    columns = spark.table("sparkify.user_features").columns
    generated = [f.name for f in registry.columns()]
    assert [c for c in columns if c in set(generated)] == generated
    assert set(columns) - set(generated) == {
        "user_id", "as_of_date", "as_of_at", "is_scoring_date", "is_label_complete",
        "churned_within_horizon", "downgraded_within_horizon", "updated_at"}
