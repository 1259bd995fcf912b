"""Train, compare and save the churn model: `python -m models_ml.train --help`.

Time protocol (default): rolling-origin folds over as_of dates choose each model's parameters,
validation AUC-PR chooses the model, the last validation date calibrates it and sets the
threshold, and the latest label-complete as_of date tests it. Lifetime protocol: the public
projects' leaky setup (whole-history features, random user split), for comparison only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models_ml import artifacts, calibration, decision, evaluate, lakehouse, portable, report, runs, split
from models_ml.candidates import (
    MODELS,
    WEIGHT,
    SCALED,
    Candidate,
    choose_baseline_feature,
    fit_on_prepared,
    model_features,
    preprocessing,
    feature_importance,
    grid,
    parse_models,
    raw_score_col,
)
from models_ml.errors import UsageError
from models_ml.features import (
    KEYS,
    LABEL,
    LIFETIME_FEATURES,
    choose_features,
    feature_columns,
    labeled_rows,
    lifetime_features,
    model_frame,
)

log = logging.getLogger("models_ml.train")

MIN_POSITIVES = 3
FULL_FOLDS, QUICK_FOLDS = 2, 1


@dataclass
class Prepared:
    """Rows for each fold and the test set, plus what model_runs records about them."""

    folds: list[tuple[str, DataFrame, DataFrame]]
    test: DataFrame
    split_text: str
    train_as_of: list[dt.date]
    validation_as_of: list[dt.date]
    test_as_of: list[dt.date]
    data_start: dt.date | None
    data_end: dt.date | None
    counts: dict[str, tuple[int, int]]  # part -> (rows, positives)


@dataclass
class ModelResult:
    model: str
    candidate: Candidate
    validation_auc_pr: float
    fitted: object
    fit_seconds: float
    search_seconds: float
    validation_se: float = 0.0
    calibrator: calibration.Calibrator | None = None
    threshold: float | None = None
    bands: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)
    importance: dict = field(default_factory=dict)


class Progress:
    """Log lines with the elapsed time, so a long run shows where it is."""

    def __init__(self) -> None:
        self.start = time.monotonic()

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def __call__(self, message: str, *args) -> None:
        log.info(f"[{self.elapsed:6.1f}s] " + message, *args)


def stable(df: DataFrame) -> DataFrame:
    """One sorted partition: a reproducible row order for seeded forests, and few tasks on small data."""
    return df.repartitionByRange(1, *KEYS).sortWithinPartitions(*KEYS)


def _check(part: str, rows: int, positives: int, where: str) -> None:
    if positives < MIN_POSITIVES or rows - positives < MIN_POSITIVES:
        raise UsageError(
            f"too few churners to evaluate: {part} ({where}) has {positives} of {rows} rows churning "
            f"(need >= {MIN_POSITIVES} of each class); use a longer or larger event log"
        )


def prepare_time(uf: DataFrame, features: list[str], horizon: int, n_folds: int) -> Prepared:
    frame = model_frame(labeled_rows(uf), features)
    per_date = {r["as_of_date"]: (int(r["n"]), int(r["pos"] or 0)) for r in
                frame.groupBy("as_of_date").agg(F.count("*").alias("n"), F.sum(LABEL).alias("pos")).collect()}
    total = sum(p for _, p in per_date.values())
    rows = sum(n for n, _ in per_date.values())
    if total in (0, rows):
        raise UsageError(f"single class: all {rows} label-complete rows have churned_within_horizon = "
                         f"{0 if total == 0 else 1}; nothing to learn from")
    ts = split.time_split(list(per_date), horizon, n_folds)
    used = sorted(set(ts.train) | set(d for f in ts.folds for d in f.train) | set(ts.validation) | {ts.test})
    frame = stable(split.rows_on(frame, used)).cache()

    def count(dates) -> tuple[int, int]:
        return sum(per_date[d][0] for d in dates), sum(per_date[d][1] for d in dates)

    _check("the test date", *per_date[ts.test], str(ts.test))
    _check("the last validation date", *per_date[ts.validation[-1]], str(ts.validation[-1]))
    _check("the training dates", *count(ts.train), f"{ts.train[0]}..{ts.train[-1]}")
    folds = [(f"{i}/{len(ts.folds)}", split.rows_on(frame, f.train), split.rows_on(frame, [f.validation]))
             for i, f in enumerate(ts.folds, 1)]
    all_dates = sorted(r[0] for r in uf.select("as_of_date").distinct().collect())
    return Prepared(
        folds=folds, test=split.rows_on(frame, [ts.test]), split_text=ts.describe(),
        train_as_of=list(ts.train), validation_as_of=list(ts.validation), test_as_of=[ts.test],
        data_start=all_dates[0], data_end=all_dates[-1],
        counts={"train": count(ts.train), "validation": count(ts.validation), "test": per_date[ts.test]},
    )


def prepare_lifetime(spark: SparkSession, features: list[str], seed: int) -> Prepared:
    activity, users = lakehouse.read(spark, "daily_activity"), lakehouse.read(spark, "users")
    frame = stable(split.random_user_split(model_frame(lifetime_features(activity, users), features), seed)).cache()
    counts = {r["part"]: (int(r["n"]), int(r["pos"] or 0)) for r in
              frame.groupBy("part").agg(F.count("*").alias("n"), F.sum(LABEL).alias("pos")).collect()}
    for part in split.PARTS:
        _check(f"the {part} users", *counts.get(part, (0, 0)), "random split")
    span = activity.agg(F.min("activity_date"), F.max("activity_date")).first()
    part = {p: frame.where(F.col("part") == p).drop("part") for p in split.PARTS}
    return Prepared(
        folds=[("1/1", part["train"], part["validation"])], test=part["test"],
        split_text=f"random split of users by seeded hash: 60% train, 20% validation, 20% test (seed {seed})\n"
                   "features over each user's whole history; label = ever churned",
        train_as_of=[], validation_as_of=[], test_as_of=[], data_start=span[0], data_end=span[1], counts=counts,
    )


def with_class_weights(train: DataFrame, rows: int, positives: int) -> DataFrame:
    """Balanced weights: each class carries half the total weight."""
    w_pos = rows / (2.0 * max(positives, 1))
    w_neg = rows / (2.0 * max(rows - positives, 1))
    return train.withColumn(WEIGHT, F.when(F.col(LABEL) == 1, w_pos).otherwise(w_neg))


def predict(fitted, df: DataFrame, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(label, raw score) of every row, collected: one row per user, so it is small."""
    pdf = fitted.transform(df).select(LABEL, raw_score_col(model).alias("raw")).toPandas()
    return pdf[LABEL].to_numpy(float), pdf["raw"].to_numpy(float)


def search(prepared: Prepared, models: list[str], features: list[str], quick: bool, seed: int,
           progress: Progress) -> dict[str, ModelResult]:
    """Fit every grid point on every fold; keep, per model, the point with the best mean
    validation AUC-PR and its fit on the last fold (the model that is calibrated and tested)."""
    scores: dict[tuple[str, str], list[float]] = {}
    predictions: dict[tuple[str, str], list[tuple[np.ndarray, np.ndarray]]] = {}
    last_fit: dict[tuple[str, str], tuple[object, float, Candidate]] = {}
    spent: dict[str, float] = {m: 0.0 for m in models}
    for fold_name, train_df, val_df in prepared.folds:
        train_pdf = train_df.select(LABEL, *features).toPandas()
        empty = [f for f in features if train_pdf[f].isna().all()]
        if empty:
            if fold_name == prepared.folds[-1][0]:
                raise UsageError(f"feature(s) {', '.join(empty)} are null on every training row")
            progress("fold %s skipped: %s null on every training row", fold_name, ", ".join(empty))
            continue
        rows, positives = len(train_pdf), int(train_pdf[LABEL].sum())
        weighted = with_class_weights(train_df, rows, positives).cache()
        shared: dict[tuple, tuple] = {}  # (inputs, scaled) -> fitted preprocessing, prepared rows
        for model in models:
            for candidate in grid(model, quick):
                if model == "baseline":
                    candidate = Candidate(model, choose_baseline_feature(train_pdf, features))
                started = time.monotonic()
                key_prep = (tuple(model_features(candidate, features)), model in SCALED)
                if key_prep not in shared:
                    prep = preprocessing(list(key_prep[0]), key_prep[1]).fit(weighted)
                    shared[key_prep] = (prep, prep.transform(weighted).select(LABEL, WEIGHT, "features").cache())
                prep, prepared_rows = shared[key_prep]
                fitted = fit_on_prepared(candidate, prep, prepared_rows, seed)
                fit_seconds = time.monotonic() - started
                y, s = predict(fitted, val_df, model)
                ap = evaluate.average_precision(y, s)
                spent[model] += time.monotonic() - started
                key = (model, candidate.params_json if model != "baseline" else "{}")
                scores.setdefault(key, []).append(ap)
                predictions.setdefault(key, []).append((y, s))
                last_fit[key] = (fitted, fit_seconds, candidate)
                progress("%-8s fold %s %s: validation AUC-PR %.3f (fit %.1fs)",
                         model, fold_name, candidate.params_json, ap, fit_seconds)
        for _, cached in shared.values():
            cached.unpersist()
        weighted.unpersist()
    results = {}
    for model in models:
        keys = [k for k in scores if k[0] == model]
        best = max(keys, key=lambda k: (np.nan_to_num(np.nanmean(scores[k]), nan=-1.0), -keys.index(k)))
        fitted, fit_seconds, candidate = last_fit[best]
        results[model] = ModelResult(model, candidate, float(np.nanmean(scores[best])), fitted,
                                     fit_seconds, spent[model],
                                     validation_se=evaluate.bootstrap_se(predictions[best], seed=seed))
    return results


def finish(result: ModelResult, prepared: Prepared, features: list[str]) -> None:
    """Calibrate and set the threshold on the last validation date, then measure on test."""
    _, _, last_val = prepared.folds[-1]
    y_val, s_val = predict(result.fitted, last_val, result.model)
    result.calibrator = calibration.fit(s_val, y_val)
    p_val = result.calibrator.apply(s_val)
    result.threshold = decision.choose_threshold(y_val, p_val)
    result.bands = decision.risk_bands(result.threshold, float(y_val.mean()))
    y, s = predict(result.fitted, prepared.test, result.model)
    p = result.calibrator.apply(s)
    result.metrics = evaluate.metrics(y, p, result.threshold)
    result.importance = feature_importance(result.fitted, result.candidate, features)
    result.curves = {
        "pr": evaluate.thin(evaluate.pr_curve(y, p)),
        "roc": evaluate.thin(evaluate.roc_curve(y, p)),
        "calibration": evaluate.calibration_curve(y, p),
        "feature_importance": result.importance,
        "auc_pr": result.metrics["auc_pr"],
        "roc_auc": result.metrics["roc_auc"],
        "threshold": result.threshold,
        "params": result.candidate.params,
    }


SIMPLICITY = ("baseline", "logreg", "svc", "rf", "gbt")
SELECTION_RULE = ("the simplest model whose mean validation AUC-PR is within one bootstrap standard "
                  "error of the best (order: " + " < ".join(SIMPLICITY) + ")")


def select(results: dict[str, ModelResult]) -> ModelResult:
    """Highest validation AUC-PR, with the one-standard-error rule: validation holds tens of
    churners, so a more complex model must beat a simpler one by more than the noise."""
    scored = [r for r in results.values() if not np.isnan(r.validation_auc_pr)]
    if not scored:
        raise UsageError("no model could be evaluated on validation (no churners there)")
    best = max(scored, key=lambda r: r.validation_auc_pr)
    bar = best.validation_auc_pr - best.validation_se
    return next(r for m in SIMPLICITY for r in scored if r.model == m and r.validation_auc_pr >= bar)


def prevalence_reference(prepared: Prepared) -> dict:
    """Everyone gets the validation churn rate: the Brier bar and AUC-PR floor."""
    _, _, last_val = prepared.folds[-1]
    rate = last_val.agg(F.avg(LABEL)).first()[0]
    y = np.asarray([r[0] for r in prepared.test.select(LABEL).collect()], float)
    p = np.full(len(y), rate)
    return {"model": "prevalence", "params": "{}", **evaluate.metrics(y, p, 1.0),
            "train_seconds": 0.0, "is_selected": False, "validation_auc_pr": float("nan")}


def train(spark: SparkSession, settings, models: list[str], quick: bool, seed: int, protocol: str) -> runs.RunRecord:
    progress = Progress()
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = artifacts.new_run_id(started_at)
    uf = lakehouse.read(spark, "user_features")
    features = choose_features(feature_columns(uf)) if protocol == "time" else list(LIFETIME_FEATURES)
    horizon = lakehouse.churn_horizon_days()
    progress("run %s: protocol %s, models %s, %s, seed %d", run_id, protocol, ",".join(models),
             "quick" if quick else "full grids", seed)
    if protocol == "time":
        prepared = prepare_time(uf, features, horizon, QUICK_FOLDS if quick else FULL_FOLDS)
    else:
        prepared = prepare_lifetime(spark, features, seed)
    for line in prepared.split_text.splitlines():
        progress("split: %s", line)
    progress("rows (churners): %s", ", ".join(f"{k} {n} ({p})" for k, (n, p) in prepared.counts.items()))

    results = search(prepared, models, features, quick, seed, progress)
    for result in results.values():
        finish(result, prepared, features)
        progress("%-8s test AUC-PR %.3f ROC-AUC %.3f", result.model, result.metrics["auc_pr"],
                 result.metrics["roc_auc"])
    selected = select(results)
    progress("selected %s (validation AUC-PR %.3f): %s", selected.model, selected.validation_auc_pr, SELECTION_RULE)

    test_rows, test_pos = prepared.counts["test"]
    record = runs.RunRecord(
        run_id=run_id, started_at=started_at, protocol=protocol, git_commit=lakehouse.git_commit(),
        data_start=prepared.data_start, data_end=prepared.data_end, train_as_of=prepared.train_as_of,
        validation_as_of=prepared.validation_as_of, test_as_of=prepared.test_as_of, features=features,
        train_rows=prepared.counts["train"][0], validation_rows=prepared.counts["validation"][0],
        test_rows=test_rows, test_positives=test_pos, prevalence=test_pos / max(test_rows, 1),
        selected_model=selected.model, threshold=selected.threshold, threshold_rule=decision.THRESHOLD_RULE,
        calibration=selected.calibrator.describe(), risk_bands=selected.bands,
    )
    record.metrics = [
        {"model": r.model, "params": r.candidate.params_json, **r.metrics, "train_seconds": r.fit_seconds,
         "is_selected": r is selected, "validation_auc_pr": r.validation_auc_pr,
         "validation_se": r.validation_se}
        for r in results.values()
    ] + [prevalence_reference(prepared)]

    if protocol == "time":
        exported = portable.export(selected.fitted, selected.model)
        medians = {k: float(v) for k, v in
                   prepared.folds[-1][1].select(*features).toPandas().median().items()}
        medians.update(zip(exported["inputs"], exported["medians"]))  # the imputer's values win
        meta = {
            "run_id": run_id, "created_at": started_at.isoformat(), "protocol": protocol,
            "model": selected.model, "params": selected.candidate.params, "features": features,
            "medians": medians, "calibrator": selected.calibrator.to_dict(), "threshold": selected.threshold,
            "threshold_rule": decision.THRESHOLD_RULE, "risk_bands": selected.bands,
            "risk_bands_rule": decision.BANDS_RULE, "horizon_days": horizon,
            "test_metrics": selected.metrics, "portable": exported,
        }
        record.model_path = str(artifacts.save(settings.home, run_id, selected.fitted, meta))
        progress("saved model to %s (models/latest -> %s)", record.model_path, run_id)
    curves = {"run_id": run_id, "protocol": protocol, "selected": selected.model,
              "prevalence": record.prevalence,
              "models": {r.model: _finite(r.curves) for r in results.values()}}
    record.report_path = str(report.write(settings.home / "reports" / run_id, record, curves,
                                         prepared.split_text, SELECTION_RULE))
    record.finished_at = dt.datetime.now(dt.timezone.utc)
    lakehouse.append_run(spark, settings, runs.to_frame(spark, record))
    progress("model card %s/model_card.md; appended %s.model_runs", record.report_path, lakehouse.SCHEMA)
    log.info("comparison on the test set (%s, %d rows, %d churners):\n%s",
             ", ".join(map(str, prepared.test_as_of)) or "random users", test_rows, test_pos,
             report.comparison_table(record))
    if protocol == "lifetime":
        log.info("lifetime protocol: whole-history features and a random split leak the label; "
                 "these numbers are optimistic by construction")
    return record


def _finite(obj):
    """Replace NaN/inf by None so curves.json is strict JSON."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models_ml.train",
        description="Train churn models on sparkify.user_features, evaluate them honestly on a later "
                    "as_of date, save the selected model, a model card and a model_runs row. Reads "
                    "SPARKIFY_HOME and the other SPARKIFY_* settings, like `make build`.",
    )
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated candidates, any of {','.join(MODELS)} (default: all). "
                             "baseline is the best one-feature rule; svc's margin is calibrated (Platt)")
    parser.add_argument("--quick", action="store_true",
                        help="one fold and one small parameter setting per model (for tests and demos)")
    parser.add_argument("--seed", type=int, default=42,
                        help="seed for forests, boosting and the lifetime split; same seed, same result (default 42)")
    parser.add_argument("--score", action="store_true",
                        help="then score the latest as_of with the new model in the same Spark session "
                             "(what `make train` does; same as running `python -m models_ml.score` after)")
    parser.add_argument("--protocol", choices=("time", "lifetime"), default="time",
                        help="time (default): train on earlier as_of dates, choose on a later one, test on "
                             "the latest label-complete one, save the model. lifetime: the public projects' "
                             "leaky whole-history features and random user split, reported only (no model saved)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        models = parse_models(args.models)
        with lakehouse.session("sparkify-train") as (settings, spark):
            train(spark, settings, models, args.quick, args.seed, args.protocol)
            if args.score:
                if args.protocol != "time":
                    raise UsageError("--score needs --protocol time: the lifetime protocol saves no model")
                from models_ml.score import score

                score(spark, settings, None, None)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except lakehouse.cfg.SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
