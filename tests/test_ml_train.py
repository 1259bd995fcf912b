"""Training and scoring end to end on the test lakehouse, plus the CLIs' clear errors.

Expectations come from user_features read with pandas, not from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

from models_ml import score as score_cli
from models_ml import train as train_cli
from models_ml.errors import UsageError


def test_unknown_model_name_exits_2_with_one_line(capsys):
    assert train_cli.main(["--models", "logreg,xgboost"]) == 2
    err = capsys.readouterr().err.strip()
    assert "xgboost" in err and "baseline,logreg,rf,gbt,svc" in err and len(err.splitlines()) == 1


def test_bad_as_of_exits_2(capsys):
    assert score_cli.main(["--as-of", "yesterday"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_help_explains_every_option(capsys):
    for main, options in ((train_cli.main, ["--models", "--quick", "--seed", "--protocol"]),
                          (score_cli.main, ["--as-of", "--model"])):
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

    record = train_cli.train(spark, settings, ["baseline", "logreg"], quick=True, seed=3, protocol="time")

    runs = spark.table("sparkify.model_runs").toPandas()
    run = runs[runs["run_id"] == record.run_id].iloc[0]
    assert run["test_as_of"].tolist() == [complete[-1]]
    assert all(d + dt.timedelta(days=14) <= min(run["validation_as_of"]) for d in run["train_as_of"])
    assert run["test_rows"] == (uf["as_of_date"] == complete[-1]).sum()
    assert run["test_positives"] == uf.loc[uf["as_of_date"] == complete[-1], "churned_within_horizon"].sum()
    assert run["selected_model"] in ("baseline", "logreg")
    assert {m["model"] for m in run["metrics"]} == {"baseline", "logreg", "prevalence"}
    assert sum(m["is_selected"] for m in run["metrics"]) == 1
    assert set(json.loads(run["risk_bands"])) == {"high", "medium"}
    home = settings.home
    assert (home / "models" / "latest").read_text().strip() == record.run_id
    assert (home / "models" / record.run_id / "model.json").is_file()
    report = home / "reports" / record.run_id
    for name in ("model_card.md", "pr_curve.png", "roc_curve.png", "calibration.png",
                 "feature_importance.png", "curves.json"):
        assert (report / name).is_file(), name
    assert set(json.loads((report / "curves.json").read_text())["models"]) == {"baseline", "logreg"}

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
    assert (with_reasons["reason_1"] == with_reasons["reasons"].map(lambda r: r[0]["text"])).all()

    # what-if in a JVM-free call agrees with the table for a scored user
    row = at_latest.iloc[0]
    values = uf[(uf["user_id"] == row["user_id"]) & (uf["as_of_date"] == latest)].iloc[0]
    features = json.loads((home / "models" / record.run_id / "model.json").read_text())["features"]
    result = what_if({f: (None if pd.isna(values[f]) else float(values[f])) for f in features},
                     model=str(home / "models" / record.run_id), home=home)
    assert result.probability == pytest.approx(row["churn_probability"], abs=1e-9)

    with pytest.raises(UsageError, match="make build"):
        lakehouse.read(spark, "no_such_table")
    with pytest.raises(UsageError, match="no rows"):
        score_cli.score(spark, settings, dt.date(1999, 1, 1), record.run_id)
    with pytest.raises(UsageError, match="--model nope"):
        score_cli.score(spark, settings, None, "nope")
