"""Training and scoring end to end on the test lakehouse, plus the CLIs' clear errors.

Expectations come from user_features read with pandas, not from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from deltalake import DeltaTable

from models_ml import backtest as backtest_cli
from models_ml import score as score_cli
from models_ml import train as train_cli
from models_ml.errors import UsageError


def test_unknown_model_name_exits_2_with_one_line(capsys):
    assert train_cli.main(["--models", "logreg,xgboost"]) == 2
    err = capsys.readouterr().err.strip()
    assert "xgboost" in err and "baseline,logreg,rf,gbt" in err and len(err.splitlines()) == 1


def test_bad_as_of_exits_2(capsys):
    assert score_cli.main(["--as-of", "yesterday"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    for main, options in ((train_cli.main, ["--models", "--quick", "--seed", "--protocol"]),
                          (score_cli.main, ["--as-of", "--model"]),
                          (backtest_cli.main, ["--model", "--seed"])):
        with pytest.raises(SystemExit) as exit_info:
            main(["--help"])
        assert exit_info.value.code == 0
        text = capsys.readouterr().out
        assert all(option in text for option in options)


@pytest.mark.spark
@pytest.mark.slow
def test_train_quick_then_score_writes_tables(built_lakehouse, spark, tmp_path):
    from models_ml import lakehouse
    from models_ml.whatif import what_if

    settings = built_lakehouse
    uf = spark.table("sparkify.user_features").toPandas()
    latest = uf["as_of_date"].max()
    complete = sorted(uf.loc[uf["is_label_complete"], "as_of_date"].unique())
    active_at_latest = set(uf.loc[uf["as_of_date"] == latest, "user_id"])

    labelled = uf[uf["is_label_complete"]]
    record = train_cli.train(spark, settings, ["baseline", "logreg"], quick=True, seed=3, protocol="time")

    runs = spark.table("sparkify.model_runs").toPandas()
    run = runs[runs["run_id"] == record.run_id].iloc[0]
    # rolling origin on es_small's weekly calendar: folds score the 3rd..7th label-complete dates,
    # the last one is the test, the others choose; the saved model is refit on every date
    assert run["test_as_of"].tolist() == [complete[-1]]
    assert run["validation_as_of"].tolist() == complete[2:-1]
    assert run["train_as_of"].tolist() == complete
    assert run["train_rows"] == len(labelled)
    assert run["test_rows"] == (uf["as_of_date"] == complete[-1]).sum()
    assert run["test_positives"] == uf.loc[uf["as_of_date"] == complete[-1], "churned_within_horizon"].sum()
    assert run["selected_model"] == "logreg"  # the one-feature baseline is a reference, never selected
    assert {m["model"] for m in run["metrics"]} == {"baseline", "logreg", "prevalence"}
    assert sum(m["is_selected"] for m in run["metrics"]) == 1
    assert set(json.loads(run["risk_bands"])) == {"high", "medium"}
    meta = json.loads((settings.home / "models" / record.run_id / "model.json").read_text())
    assert meta["trained_on"] == [str(d) for d in complete]
    # the training set's Delta version, read back by time travel, holds the rows trained on
    version = DeltaTable(str(settings.warehouse / "sparkify.db" / "user_features")).version() \
        if settings.table_format.name == "delta" else None
    assert run["user_features_version"] == meta["user_features_version"] == version
    if version is not None:
        past = spark.sql(f"select * from sparkify.user_features version as of {version}").toPandas()
        assert past["is_label_complete"].sum() == run["train_rows"]
        card = (settings.home / "reports" / record.run_id / "model_card.md").read_text()
        assert f"version as of {version}`" in card
    # refit on all label-complete rows: the imputer's medians are those of every labelled row
    for name, median in zip(meta["portable"]["inputs"], meta["portable"]["medians"]):
        column = labelled[name].dropna().astype(float)
        assert column.quantile(0.49) <= median <= column.quantile(0.51), name
    assert set(meta["importance"]) == set(meta["features"]) and sum(meta["importance"].values()) == pytest.approx(1)
    for name, (low, high) in meta["feature_ranges"].items():
        assert (low, high) == pytest.approx((labelled[name].astype(float).quantile(0.01),
                                             labelled[name].astype(float).quantile(0.99)))

    backtests = spark.table("sparkify.model_backtests").toPandas()
    mine = backtests[backtests["backtest_id"] == f"{record.run_id}-rolling"]
    snaps = mine[mine["scope"] == "snapshot"].sort_values("as_of_date")
    assert snaps["as_of_date"].tolist() == complete[2:]
    for _, snap in snaps.iterrows():
        day = uf[uf["as_of_date"] == snap["as_of_date"]]
        assert snap["rows"] == len(day) and snap["positives"] == day["churned_within_horizon"].sum()
        assert snap["train_as_of_last"] + dt.timedelta(days=14) <= snap["as_of_date"]
    pooled = mine[mine["scope"] == "pooled"].iloc[0]
    assert pooled["rows"] == snaps["rows"].sum() and pooled["positives"] == snaps["positives"].sum()
    assert pooled["roc_auc_lo"] <= pooled["roc_auc"] <= pooled["roc_auc_hi"]
    assert pooled["ap_lift"] == pytest.approx(pooled["average_precision"] / pooled["prevalence"])
    home = settings.home
    assert (home / "models" / "latest").read_text().strip() == record.run_id
    assert (home / "models" / record.run_id / "model.json").is_file()
    report = home / "reports" / record.run_id
    for name in ("model_card.md", "pr_curve.png", "roc_curve.png", "calibration.png",
                 "feature_importance.png", "curves.json"):
        assert (report / name).is_file(), name
    assert set(json.loads((report / "curves.json").read_text())["models"]) == {"baseline", "logreg"}
    assert f"**Saved model:** {home / 'models' / record.run_id}\n" in (report / "model_card.md").read_text()

    score_cli.score(spark, settings, None, None)
    earlier = complete[-1]
    score_cli.score(spark, settings, earlier, record.run_id)
    score_cli.score(spark, settings, None, str(home / "models" / record.run_id))  # again: replaces

    scores = spark.table("sparkify.churn_scores").toPandas()
    mine = scores[scores["model_run_id"] == record.run_id]
    at_latest = mine[mine["as_of_date"] == latest]
    assert set(at_latest["user_id"]) == active_at_latest
    assert len(at_latest) == len(active_at_latest)  # re-scoring replaced, did not append
    assert len(mine[mine["as_of_date"] == earlier]) == (uf["as_of_date"] == earlier).sum()  # history kept
    assert mine["churn_probability"].between(0, 1).all()
    assert set(mine["risk_band"]) <= {"high", "medium", "low"}
    with_reasons = mine[mine["reasons"].map(len) > 0]
    assert len(with_reasons) > 0
    assert (with_reasons["reason_1"] == with_reasons["reasons"].map(lambda r: r[0]["text"])).all()
    # reasons compare with the median of the population scored at that as_of
    population = uf[uf["as_of_date"] == latest]
    for reasons in at_latest["reasons"]:
        for reason in reasons:
            assert reason["median"] == pytest.approx(population[reason["feature"]].astype(float).median())
            assert reason["value"] != pytest.approx(reason["median"])

    # what-if in a JVM-free call agrees with the table for a scored user
    row = at_latest.iloc[0]
    values = uf[(uf["user_id"] == row["user_id"]) & (uf["as_of_date"] == latest)].iloc[0]
    features = json.loads((home / "models" / record.run_id / "model.json").read_text())["features"]
    result = what_if({f: (None if pd.isna(values[f]) else float(values[f])) for f in features},
                     model=str(home / "models" / record.run_id), home=home)
    assert result.probability == pytest.approx(row["churn_probability"], abs=1e-9)

    # a backtest of this model's configuration, and of the saved model as it is
    rolling = backtest_cli.run(spark, settings, None, seed=3)
    assert [r["as_of_date"] for r in rolling if r["scope"] == "snapshot"] == complete[2:]
    fixed = backtest_cli.run(spark, settings, str(home / "models" / record.run_id), seed=3)
    assert [r["as_of_date"] for r in fixed if r["scope"] == "snapshot"] == complete
    assert fixed[-1]["rows"] == len(labelled)
    foreign = tmp_path / "foreign-model"
    foreign.mkdir()
    other = {**meta, "features": [*meta["features"], "minutes_on_the_moon_28d"]}
    (foreign / "model.json").write_text(json.dumps(other))
    with pytest.raises(UsageError, match="lacks: minutes_on_the_moon_28d"):
        backtest_cli.run(spark, settings, str(foreign), seed=3)

    with pytest.raises(UsageError, match="make build"):
        lakehouse.read(spark, "no_such_table")
    with pytest.raises(UsageError, match="no rows"):
        score_cli.score(spark, settings, dt.date(1999, 1, 1), record.run_id)
    with pytest.raises(UsageError, match="--model nope"):
        score_cli.score(spark, settings, None, "nope")


@pytest.mark.spark
@pytest.mark.slow
def test_latest_moves_only_once_the_run_is_recorded(built_lakehouse, spark, monkeypatch):
    from models_ml import lakehouse

    models = built_lakehouse.home / "models"
    latest = models / "latest"
    before = latest.read_text() if latest.exists() else None
    saved_before = {p.name for p in models.iterdir()} if models.exists() else set()

    def killed(*_args, **_kwargs):
        raise RuntimeError("the process died before the model_runs row was written")

    monkeypatch.setattr(lakehouse, "append_run", killed)
    with pytest.raises(RuntimeError, match="model_runs row"):
        train_cli.train(spark, built_lakehouse, ["baseline", "logreg"], quick=True, seed=5,
                        protocol="time")
    assert (latest.read_text() if latest.exists() else None) == before  # readers still get the recorded model
    new = [p for p in models.iterdir() if p.name not in saved_before and p.is_dir()]
    assert len(new) == 1
    assert json.loads((new[0] / "model.json").read_text())["features"]  # complete: written by rename
    assert not list(new[0].glob("*.tmp"))
