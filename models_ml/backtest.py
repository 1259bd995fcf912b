"""Rolling-origin backtest: `python -m models_ml.backtest --help`.

For every label-complete snapshot T, train the model's configuration on the snapshots whose label
horizon has ended by T, score T, then pool all scored snapshots. `--model PATH` instead scores
every snapshot of this lakehouse with one saved model (trained elsewhere, say): a cross-dataset
check in one command. Results go to `model_backtests`, a report and the dashboard's Model page.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from models_ml import artifacts, evaluate, lakehouse, report, runs, train
from models_ml.artifacts import SavedModel
from models_ml.candidates import Candidate
from models_ml.errors import UsageError
from models_ml.features import LIFETIME_FEATURES, feature_columns, labeled_rows, model_frame
from models_ml.score import probability

log = logging.getLogger("models_ml.backtest")


def check_features(uf_columns: list[str], saved: SavedModel) -> None:
    """A model trained on another feature set cannot score this lakehouse: name what is missing."""
    missing = [f for f in saved.features if f not in uf_columns]
    if missing:
        raise UsageError(
            f"the model {saved.run_id} ({saved.path}) was trained on feature(s) this lakehouse's "
            f"user_features lacks: {', '.join(missing)}. Rebuild with the same feature registry "
            "(`make build`), or backtest a model trained on this one's features"
        )


def rolling(spark: SparkSession, saved: SavedModel, seed: int, progress: train.Progress) -> list[dict]:
    """Retrain the saved model's configuration per snapshot and score it, out of time."""
    uf = lakehouse.read(spark, "user_features")
    check_features(feature_columns(uf), saved)
    prepared = train.prepare_time(uf, saved.features, lakehouse.churn_horizon_days())
    candidate = Candidate(saved.meta["model"], dict(saved.meta["params"]))
    trial = train.run_trials(prepared, [candidate], saved.features, seed, progress)[0]
    return train.backtest_rows(trial, train.walk_forward_probabilities(trial), seed)


def fixed(spark: SparkSession, saved: SavedModel, seed: int) -> list[dict]:
    """Score every label-complete snapshot with one saved model and its own calibration."""
    uf = lakehouse.read(spark, "user_features")
    check_features(feature_columns(uf), saved)
    rows = model_frame(labeled_rows(uf), saved.features).fillna(saved.medians, subset=saved.features)
    pdf = (probability(saved.load_pipeline(), saved, rows)
           .select("user_id", "as_of_date", "churned_within_horizon", "probability").toPandas())
    if pdf.empty:
        raise UsageError("user_features has no label-complete as_of date: the data must span more than "
                         f"{lakehouse.churn_horizon_days()} days after the first as_of")
    out = []
    for as_of, snap in sorted(pdf.groupby("as_of_date"), key=lambda t: t[0]):
        out.append({"scope": "snapshot", "as_of_date": as_of, **evaluate.with_intervals(
            snap["churned_within_horizon"].to_numpy(float), snap["probability"].to_numpy(float),
            snap["user_id"].to_numpy(), reps=200, seed=seed)})
    out.append({"scope": "pooled", "as_of_date": None, **evaluate.with_intervals(
        pdf["churned_within_horizon"].to_numpy(float), pdf["probability"].to_numpy(float),
        pdf["user_id"].to_numpy(), seed=seed)})
    return out


def lifetime_reference(spark: SparkSession, saved: SavedModel, seed: int) -> dict:
    """The public projects' leaky lifetime protocol for the same model type: the number that
    looks better than any honest one, for comparison."""
    candidate = Candidate(saved.meta["model"], dict(saved.meta["params"]))
    if candidate.model == "baseline":
        return {}
    features = list(LIFETIME_FEATURES)
    frame = train.lifetime_frame(spark, seed)
    fitted = train.fit_candidate(candidate, frame.where(F.col("part") != "test").drop("part"), features, seed)
    y, s, _ = train.predict(fitted, frame.where(F.col("part") == "test").drop("part"), candidate.model)
    return {"roc_auc": evaluate.roc_auc(y, s), "average_precision": evaluate.average_precision(y, s),
            "rows": len(y), "positives": int(y.sum())}


def run(spark: SparkSession, settings, model_spec: str | None, seed: int) -> list[dict]:
    progress = train.Progress()
    started_at = dt.datetime.now(dt.timezone.utc)
    saved = artifacts.resolve(model_spec, settings.home)
    kind = "model" if model_spec else "rolling"
    progress("backtest (%s) of %s %s %s", kind, saved.run_id, saved.meta["model"], saved.meta["params"])
    rows = fixed(spark, saved, seed) if kind == "model" else rolling(spark, saved, seed, progress)
    backtest_id = f"{started_at:%Y%m%dT%H%M%SZ}-{kind}-{saved.run_id}"
    source = str(saved.path) if kind == "model" else saved.run_id
    lakehouse.append_backtest(spark, settings, runs.backtest_frame(
        spark, runs.BacktestHeader(backtest_id, started_at, kind, saved.meta["model"], source), rows))
    out = settings.home / "reports" / f"backtest-{backtest_id}"
    out.mkdir(parents=True, exist_ok=True)
    report.backtest_plot(rows, out)
    lifetime = lifetime_reference(spark, saved, seed) if kind == "rolling" else {}
    text = report.backtest_markdown(rows)
    if lifetime:
        text += (f"\n\nLifetime protocol, same model type, for comparison only (whole-history features, "
                 f"random user split; leaks the label): ROC-AUC {lifetime['roc_auc']:.3f}, average "
                 f"precision {lifetime['average_precision']:.3f} on {lifetime['rows']} test users.")
    (out / "backtest.md").write_text(f"# Backtest {backtest_id}\n\nModel: {saved.meta['model']} "
                                     f"`{saved.meta['params']}` from {source}\n\n{text}\n\n"
                                     "![Backtest](backtest.png)\n")
    log.info("%s\n", text)
    pooled = rows[-1]
    progress("pooled over %d snapshots: ROC-AUC %.3f [%.3f, %.3f], average precision %.3f = %.2fx prevalence; "
             "wrote %s.model_backtests (%s) and %s/backtest.md", len(rows) - 1, pooled["roc_auc"],
             pooled["roc_auc_lo"], pooled["roc_auc_hi"], pooled["average_precision"], pooled["ap_lift"],
             lakehouse.SCHEMA, backtest_id, out)
    return rows


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models_ml.backtest",
        description="Rolling-origin backtest over every label-complete weekly snapshot of this lakehouse: "
                    "pooled ROC-AUC, average precision (and x prevalence), precision in the top 10%% and "
                    "Brier, each with a bootstrap 95%% interval grouped by user, plus a per-snapshot table. "
                    "Writes sparkify.model_backtests and a report under $SPARKIFY_HOME/reports/.")
    parser.add_argument("--model", metavar="PATH_OR_RUN_ID",
                        help="score every snapshot with this saved model as it is (e.g. one trained on another "
                             "event log: a cross-dataset check). Default: retrain the configuration of "
                             "models/latest per snapshot (rolling origin)")
    parser.add_argument("--seed", type=int, default=42, help="seed for forests and the bootstrap (default 42)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        artifacts.resolve(args.model, lakehouse.cfg.load().home)  # fail before starting Spark
        with lakehouse.session("sparkify-backtest") as (settings, spark):
            run(spark, settings, args.model, args.seed)
    except (UsageError, lakehouse.cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
