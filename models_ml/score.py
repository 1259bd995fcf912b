"""Score users into `sparkify.churn_scores`: `python -m models_ml.score --help`.

Who is scored: every row of user_features at the as_of date, i.e. every user active in the
28 days before it and not churned by then. The default as_of is the latest (the day after the
last event). Re-scoring an as_of with the same model replaces exactly those rows.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time

import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, DateType, DoubleType, StringType, StructField, StructType, TimestampType

from models_ml import artifacts, lakehouse
from models_ml.artifacts import SavedModel
from models_ml.candidates import raw_score_col
from models_ml.decision import band
from models_ml.errors import UsageError
from models_ml.features import KEYS, choose_features, feature_columns, model_frame
from models_ml.reasons import explain

log = logging.getLogger("models_ml.score")

OUTPUT_COLUMNS = ("user_id", "as_of_date", "churn_probability", "risk_band", "reason_1", "reason_2",
                  "reason_3", "reasons", "model_run_id", "scored_at")


REASON_TYPE = ArrayType(StructType([StructField("feature", StringType()), StructField("value", DoubleType()),
                                      StructField("median", DoubleType()), StructField("text", StringType())]))


def probability(pipeline, saved: SavedModel, df: DataFrame) -> DataFrame:
    """Add `probability` (calibrated, in [0, 1]) to df; the pipeline's own columns are dropped."""
    model = saved.meta["model"]
    scored = pipeline.transform(df)
    calibrated = saved.calibrator.apply_col(raw_score_col(model))
    keep = [c for c in df.columns if c != "probability"]
    return scored.select(*keep, F.least(F.greatest(calibrated, F.lit(0.0)), F.lit(1.0)).alias("probability"))


def population_medians(pdf: pd.DataFrame, features: list[str], fallback: dict[str, float]) -> dict[str, float]:
    """Each feature's median over the users scored at this as_of (missing values left out): the
    "typical" customer the reasons compare with."""
    out = {}
    for f in features:
        value = pdf[f].median()
        out[f] = float(value) if pd.notna(value) else float(fallback[f])
    return out


def score_frame(spark: SparkSession, features_df: DataFrame, pipeline, saved: SavedModel,
                scored_at: dt.datetime) -> tuple[DataFrame, dict[str, float]]:
    """Rows of user_features (model_frame) -> churn_scores rows with band and top-3 reasons, and
    the population medians the reasons used. One row per user, so the reasons are computed in
    numpy on the collected rows, by the model's portable copy (as the what-if form does)."""
    features = saved.features
    raw = features_df.select(*KEYS, *features).toPandas()
    medians = population_medians(raw, features, saved.medians)
    # Missing values become the model's training medians: the imputer's own values.
    filled = features_df.select(*KEYS, *features).fillna(saved.medians, subset=features)
    scored = probability(pipeline, saved, filled).select(*KEYS, "probability").toPandas()
    pdf = raw.merge(scored, on=list(KEYS))
    x = pdf[features].astype(float).fillna(saved.medians).to_numpy()
    reasons = explain(x, features, medians, saved.probabilities)
    bands = saved.meta["risk_bands"]
    rows = [
        (str(r.user_id), r.as_of_date, float(r.probability), band(float(r.probability), bands),
         *[(rs[i]["text"] if i < len(rs) else None) for i in range(3)],
         [(x_["feature"], x_["value"], x_["median"], x_["text"]) for x_ in rs],
         saved.run_id, scored_at.replace(tzinfo=None))
        for r, rs in zip(pdf.itertuples(index=False), reasons)
    ]
    schema = StructType([
        StructField("user_id", StringType()), StructField("as_of_date", DateType()),
        StructField("churn_probability", DoubleType()), StructField("risk_band", StringType()),
        *[StructField(f"reason_{i}", StringType()) for i in (1, 2, 3)],
        StructField("reasons", REASON_TYPE), StructField("model_run_id", StringType()),
        StructField("scored_at", TimestampType()),
    ])
    return spark.createDataFrame(rows, schema), medians


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--as-of {text}: not a date (use YYYY-MM-DD)") from None


def score(spark: SparkSession, settings, as_of: dt.date | None, model_spec: str | None, pipeline=None) -> int:
    """Score `as_of` with the model `model_spec` names; `pipeline` is that model's fitted pipeline when the caller
    holds it already (training with --score), else it is loaded from the model directory."""
    started = time.monotonic()
    saved = artifacts.resolve(model_spec, settings.home)
    uf = lakehouse.read(spark, "user_features")
    choose_features(feature_columns(uf), tuple(saved.features))
    if as_of is None:
        as_of = uf.agg(F.max("as_of_date")).first()[0]
        if as_of is None:
            raise UsageError("user_features is empty: run `make build` first")
    rows = model_frame(uf.where(F.col("as_of_date") == F.lit(as_of)), saved.features).cache()
    n = rows.count()
    if n == 0:
        dates = [r[0] for r in uf.select("as_of_date").distinct().orderBy("as_of_date").collect()]
        raise UsageError(f"--as-of {as_of}: no rows in user_features; as_of dates are "
                         f"{dates[0]}..{dates[-1]} (weekly, plus the day after the last event)")
    log.info("scoring %d users at as_of %s with model %s (%s, %s)", n, as_of, saved.run_id,
             saved.meta["model"], saved.path)
    scores, medians = score_frame(spark, rows, pipeline or saved.load_pipeline(), saved,
                                  dt.datetime.now(dt.timezone.utc))
    log.info("reasons compare with the medians of these %d users: %s", n,
             ", ".join(f"{k} {v:.4g}" for k, v in medians.items()))
    lakehouse.write_scores(spark, settings, scores)
    summary = (spark.table(lakehouse.table_name("churn_scores"))
               .where((F.col("as_of_date") == F.lit(as_of)) & (F.col("model_run_id") == saved.run_id))
               .groupBy("risk_band").agg(F.count("*").alias("n"), F.avg("churn_probability").alias("p"))
               .orderBy("risk_band").collect())
    for r in summary:
        log.info("  %-6s %5d users, mean probability %.3f", r["risk_band"], r["n"], r["p"])
    log.info("wrote %s.churn_scores for as_of %s in %.1fs", lakehouse.SCHEMA, as_of, time.monotonic() - started)
    return n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models_ml.score",
        description="Write calibrated churn probabilities, risk bands and top-3 reasons for every active, "
                    "not-yet-churned user at one as_of date into sparkify.churn_scores (partitioned by "
                    "as_of_date and model_run_id; other partitions are kept).",
    )
    parser.add_argument("--as-of", metavar="DATE",
                        help="as_of date to score, YYYY-MM-DD (default: the latest in user_features, "
                             "the day after the last event)")
    parser.add_argument("--model", metavar="PATH_OR_RUN_ID",
                        help="a saved model directory (e.g. $SPARKIFY_HOME/models/<run_id>/, also from "
                             "another lakehouse) or a run id under this lakehouse's models/ "
                             "(default: models/latest, the last time-protocol training run)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        as_of = parse_date(args.as_of) if args.as_of else None
        artifacts.resolve(args.model, lakehouse.cfg.load().home)  # fail before starting Spark
        with lakehouse.session("sparkify-score") as (settings, spark):
            score(spark, settings, as_of, args.model)
    except (UsageError, lakehouse.cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
