"""Train, compare and save the churn model: `python -m models_ml.train --help`.

Time protocol (default): a rolling-origin fold per label-complete as_of date (train on the dates
whose horizon has ended by it, score it). The pooled out-of-time scores of every fold but the last
choose the model (with a paired comparison), the last fold tests it, and the saved model is refit
on every label-complete date, calibrated and thresholded on all folds' out-of-time scores.
Lifetime protocol: the public projects' leaky setup (whole-history features, random user split),
for comparison only.
"""

from __future__ import annotations

import argparse
import datetime as dt
from concurrent.futures import ThreadPoolExecutor, as_completed
import logging
import sys
import time
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pandas as pd
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from models_ml import artifacts, calibration, decision, evaluate, lakehouse, portable, report, runs, split
from models_ml.candidates import (
    MODELS,
    RULES,
    SCALED,
    SCORED_IN_PYTHON,
    WEIGHT,
    Candidate,
    baseline_scores,
    choose_baseline_feature,
    feature_importance,
    fit_on_prepared,
    grid,
    model_features,
    parse_models,
    preprocessing,
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
# Fits run side by side, all folds in one pool, so that one fit's driver work and job latency overlap another's
# Spark tasks (es_small, train alone: 41.0 / 40.9 s against 45.4 / 45.6 s fold by fold; 6 or 8 threads: the same).
FIT_THREADS = 4


@dataclass
class Prepared:
    """The label-complete rows, the rolling folds over them, and what model_runs records."""

    frame: DataFrame  # model_frame of every label-complete row, cached
    folds: list[split.Fold]
    split_text: str
    data_start: dt.date | None
    data_end: dt.date | None
    per_date: dict[dt.date, tuple[int, int]]  # as_of -> (rows, churners)

    @property
    def selection_folds(self) -> list[split.Fold]:
        return self.folds[:-1]

    @property
    def test_fold(self) -> split.Fold:
        return self.folds[-1]

    def count(self, dates) -> tuple[int, int]:
        return (sum(self.per_date[d][0] for d in dates), sum(self.per_date[d][1] for d in dates))

    @property
    def all_dates(self) -> list[dt.date]:
        return sorted(self.per_date)


@dataclass
class FoldScores:
    """Out-of-time raw scores of one candidate on one fold's scored date."""

    fold: split.Fold
    y: np.ndarray
    s: np.ndarray
    users: np.ndarray
    train_s: np.ndarray | None = None  # its scores on its own training rows (first fold only)
    train_y: np.ndarray | None = None


@dataclass
class Trial:
    """One candidate (model + parameters) fitted on every fold."""

    candidate: Candidate
    scores: list[FoldScores] = field(default_factory=list)
    fit_seconds: float = 0.0

    @property
    def model(self) -> str:
        return self.candidate.model

    def pooled(self, folds: list[split.Fold]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(y, raw score, user) of the given folds' scored dates, stacked."""
        picked = [f for f in self.scores if f.fold in folds]
        return (np.concatenate([f.y for f in picked]), np.concatenate([f.s for f in picked]),
                np.concatenate([f.users for f in picked]))

    def selection_ap(self, prepared: Prepared) -> float:
        y, s, _ = self.pooled(prepared.selection_folds)
        return evaluate.average_precision(y, s)


@dataclass
class ModelResult:
    model: str
    trial: Trial
    validation_auc_pr: float
    validation_se: float = 0.0
    calibrator: calibration.Calibrator | None = None
    threshold: float | None = None
    metrics: dict = field(default_factory=dict)
    curves: dict = field(default_factory=dict)

    @property
    def candidate(self) -> Candidate:
        return self.trial.candidate


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


def prepare_time(uf: DataFrame, features: list[str], horizon: int) -> Prepared:
    """Every label-complete row, and one rolling fold per date that has earlier training data."""
    frame = model_frame(labeled_rows(uf), features)
    per_date = {r["as_of_date"]: (int(r["n"]), int(r["pos"] or 0)) for r in
                frame.groupBy("as_of_date").agg(F.count("*").alias("n"), F.sum(LABEL).alias("pos")).collect()}
    total = sum(p for _, p in per_date.values())
    rows = sum(n for n, _ in per_date.values())
    if total in (0, rows):
        raise UsageError(f"single class: all {rows} label-complete rows have churned_within_horizon = "
                         f"{0 if total == 0 else 1}; nothing to learn from")
    folds = split.rolling_folds(list(per_date), horizon, split.MIN_FOLDS)
    prepared_rows = stable(frame).cache()
    span = uf.agg(F.min("as_of_date"), F.max("as_of_date")).first()
    prepared = Prepared(prepared_rows, folds, "", span[0], span[1], per_date)
    sel_dates = [f.scored for f in prepared.selection_folds]
    _check("the selection dates", *prepared.count(sel_dates), f"{sel_dates[0]}..{sel_dates[-1]}")
    _check("the test date", *per_date[prepared.test_fold.scored], str(prepared.test_fold.scored))
    lines = [f"fold {i}/{len(folds)}: {f.describe()}" + ("  (test)" if f is folds[-1] else "")
             for i, f in enumerate(folds, 1)]
    lines.append(f"selection: pooled out-of-time scores of folds 1..{len(folds) - 1}; test: fold {len(folds)}; "
                 f"saved model: refit on all {len(per_date)} label-complete as_of dates")
    prepared.split_text = "\n".join(lines)
    return prepared


def with_class_weights(train: DataFrame, rows: int, positives: int) -> DataFrame:
    """Balanced weights: each class carries half the total weight."""
    w_pos = rows / (2.0 * max(positives, 1))
    w_neg = rows / (2.0 * max(rows - positives, 1))
    return train.withColumn(WEIGHT, F.when(F.col(LABEL) == 1, w_pos).otherwise(w_neg))


def predict(fitted, df: DataFrame, model: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, raw score, user) of every row, collected: one row per user and date, so it is small."""
    pdf = fitted.transform(df).select(LABEL, "user_id", raw_score_col(model).alias("raw")).toPandas()
    return pdf[LABEL].to_numpy(float), pdf["raw"].to_numpy(float), pdf["user_id"].astype(str).to_numpy()


def _labelled(rows: pd.DataFrame, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, raw score, user) of collected `rows`, as `predict` gives them from Spark (no users: empty)."""
    users = rows["user_id"].astype(str).to_numpy() if "user_id" in rows else np.array([], dtype=str)
    return rows[LABEL].to_numpy(float), raw, users


def exported_scores(exported: dict, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, raw score, user) of `rows` under an exported model, as `predict` gives them from Spark."""
    return _labelled(rows, portable.raw_scores(exported, rows[exported["inputs"]].to_numpy(float)))


def rule_scores(candidate: Candidate, train_pdf: pd.DataFrame, rows: pd.DataFrame
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(label, raw score, user) of `rows` under a rule set on `train_pdf`, as `predict` gives a model's."""
    return _labelled(rows, baseline_scores(candidate.params, train_pdf, rows))


def fit_candidate(candidate: Candidate, train_df: DataFrame, features: list[str], seed: int,
                  cache: dict | None = None):
    """Fit the whole pipeline (imputer, scaler, classifier) with balanced class weights.
    `cache` shares one fitted preprocessing per input set between the candidates of a fold."""
    if cache is None:
        rows, positives = train_df.count(), int(train_df.agg(F.sum(LABEL)).first()[0] or 0)
        cache = {"weighted": with_class_weights(train_df, rows, positives), "prep": {}}
    prep, prepared_rows = _preprocessed(cache, candidate, features)
    return fit_on_prepared(candidate, prep, prepared_rows, seed)


def _preprocessed(cache: dict, candidate: Candidate, features: list[str]):
    """The fitted preprocessing for this candidate's inputs and the rows it prepared (cached)."""
    key = (tuple(model_features(candidate, features)), candidate.model in SCALED)
    if key not in cache["prep"]:
        prep = preprocessing(list(key[0]), key[1]).fit(cache["weighted"])
        cache["prep"][key] = (prep, prep.transform(cache["weighted"]).select(LABEL, WEIGHT, "features").cache())
    return cache["prep"][key]


@dataclass
class FoldInputs:
    """One fold's rows, ready to fit on: weighted training rows and the preprocessing of each input set."""

    number: int
    fold: split.Fold
    train_df: DataFrame
    scored_df: DataFrame
    candidates: list[Candidate]
    cache: dict
    train_pdf: pd.DataFrame  # label and features of the training rows
    scored_pdf: pd.DataFrame | None  # label, user and features of the scored rows, for a rule or numpy scoring


def fold_inputs(prepared: Prepared, number: int, fold: split.Fold, grid_points: list[Candidate],
                features: list[str]) -> FoldInputs:
    """Weight and preprocess a fold's training rows, once per input set. A baseline without a feature
    picks its one feature on the fold's training rows."""
    train_df = split.rows_on(prepared.frame, fold.train)
    train_pdf = train_df.select(LABEL, *features).toPandas()
    empty = [f for f in features if train_pdf[f].isna().all()]
    if empty:
        raise UsageError(f"feature(s) {', '.join(empty)} are null on every training row of fold "
                         f"{number} ({fold.describe()})")
    rows, positives = len(train_pdf), int(train_pdf[LABEL].sum())
    cache = {"weighted": with_class_weights(train_df, rows, positives).cache(), "prep": {}}
    candidates = [Candidate(c.model, choose_baseline_feature(train_pdf, features))
                  if c.model == "baseline" and "feature" not in c.params else c for c in grid_points]
    for candidate in candidates:
        if candidate.model not in RULES:
            _preprocessed(cache, candidate, features)
    scored_df = split.rows_on(prepared.frame, [fold.scored])
    scored_pdf = (scored_df.select(LABEL, "user_id", *features).toPandas()
                  if any(c.model in RULES | SCORED_IN_PYTHON for c in candidates) else None)
    return FoldInputs(number, fold, train_df, scored_df, candidates, cache, train_pdf, scored_pdf)


# The order the fits start in. A boosted model's rounds are Spark jobs one after another, so a fold waited on
# its booster while the cores idled; started first, the boosters and forests of all folds overlap each other,
# and the short linear fits fill the gaps.
FIT_ORDER = ("gbt", "rf", "logreg", "baseline")


def run_trials(prepared: Prepared, grid_points: list[Candidate], features: list[str], seed: int,
               progress: Progress) -> list[Trial]:
    """Fit every candidate on every fold and keep its out-of-time scores: all folds' fits in one pool."""
    folds = list(enumerate(prepared.folds, 1))
    with ThreadPoolExecutor(FIT_THREADS) as pool:
        inputs = list(pool.map(lambda f: fold_inputs(prepared, f[0], f[1], grid_points, features), folds))

    def one(job: tuple[FoldInputs, Candidate]) -> tuple[FoldScores, float]:
        data, candidate = job
        started = time.monotonic()
        # how this candidate scores rows: (label, raw score, user) of the fold's scored rows, then its training rows
        if candidate.model in RULES:
            scored, rows = partial(rule_scores, candidate, data.train_pdf), (data.scored_pdf, data.train_pdf)
        else:
            fitted = fit_candidate(candidate, data.train_df, features, seed, data.cache)
            if candidate.model in SCORED_IN_PYTHON:
                scored = partial(exported_scores, portable.export(fitted, candidate.model))
                rows = (data.scored_pdf, data.train_pdf)
            else:
                scored, rows = partial(predict, fitted, model=candidate.model), (data.scored_df, data.train_df)
        scores = FoldScores(data.fold, *scored(rows[0]))
        if data.number == 1:  # in-sample scores: the first fold's calibration has nothing earlier
            scores.train_y, scores.train_s, _ = scored(rows[1])
        return scores, time.monotonic() - started

    jobs = [(data, candidate) for data in inputs for candidate in data.candidates]
    results: dict[int, tuple[FoldScores, float]] = {}
    left = {data.number: len(data.candidates) for data in inputs}
    with ThreadPoolExecutor(FIT_THREADS) as pool:
        started = {pool.submit(one, jobs[i]): i for i in
                   sorted(range(len(jobs)), key=lambda i: FIT_ORDER.index(jobs[i][1].model))}
        for future in as_completed(started):
            results[started[future]] = future.result()
            data = jobs[started[future]][0]
            left[data.number] -= 1
            if not left[data.number]:
                progress("fold %d/%d %s: %d candidates, %d scored rows (%d churners)", data.number,
                         len(prepared.folds), data.fold.describe(), len(data.candidates),
                         *prepared.per_date[data.fold.scored])
    trials: dict[tuple[str, str], Trial] = {}
    for i, (data, candidate) in enumerate(jobs):  # fold by fold, so each trial's scores are in fold order
        scores, seconds = results[i]
        key = (candidate.model, candidate.params_json if candidate.model != "baseline" else "{}")
        trial = trials.setdefault(key, Trial(candidate))
        trial.candidate = candidate  # the baseline's feature is the latest fold's choice
        trial.scores.append(scores)
        trial.fit_seconds += seconds
    for data in inputs:
        for _, cached in data.cache["prep"].values():
            cached.unpersist()
        data.cache["weighted"].unpersist()
    return list(trials.values())


SIMPLICITY = ("logreg", "rf", "gbt")
SELECTION_RULE = (
    "pooled out-of-time average precision over the selection folds; the simplest model ("
    + " < ".join(SIMPLICITY) + ") whose paired bootstrap difference to the best is within one standard "
    "error of it. The one-feature baseline is a reference: it can give no reasons and no what-if")


def best_per_model(trials: list[Trial], prepared: Prepared) -> dict[str, Trial]:
    """Each model's grid point with the best pooled selection average precision."""
    out: dict[str, Trial] = {}
    for trial in trials:
        if trial.model not in out or trial.selection_ap(prepared) > out[trial.model].selection_ap(prepared):
            out[trial.model] = trial
    return out


def select(best: dict[str, Trial], prepared: Prepared, seed: int) -> tuple[str, dict[str, tuple[float, float]]]:
    """The selected model and, per model, (AP shortfall to the best, its paired standard error)."""
    contenders = [m for m in SIMPLICITY if m in best]
    if not contenders:
        raise UsageError("choose at least one of " + ", ".join(SIMPLICITY) + " with --models")
    top = max(contenders, key=lambda m: best[m].selection_ap(prepared))
    y, s_top, users = best[top].pooled(prepared.selection_folds)
    gaps = {}
    for model, trial in best.items():
        _, s, _ = trial.pooled(prepared.selection_folds)
        gaps[model] = evaluate.paired_difference(y, s_top, s, users, reps=200, seed=seed)
    chosen = next(m for m in contenders if gaps[m][0] <= gaps[m][1])
    return chosen, gaps


def calibrate(trial: Trial, folds: list[split.Fold]) -> tuple[calibration.Calibrator, float, float]:
    """Calibrator, F1 threshold and churn rate from the pooled out-of-time scores of `folds`."""
    y, s, _ = trial.pooled(folds)
    calibrator = calibration.fit(s, y)
    return calibrator, decision.choose_threshold(y, calibrator.apply(s)), float(y.mean())


def walk_forward_probabilities(trial: Trial) -> list[np.ndarray]:
    """Calibrated probabilities per fold, each from a calibrator fitted on the earlier folds'
    out-of-time scores; while those hold fewer than MIN_POSITIVES churners, on the first fold
    model's scores of its own training rows (the only rows known by then)."""
    out = []
    for k, scores in enumerate(trial.scores):
        earlier = trial.scores[:k]
        y = np.concatenate([f.y for f in earlier]) if earlier else np.array([])
        if y.sum() >= MIN_POSITIVES:
            calibrator = calibration.fit(np.concatenate([f.s for f in earlier]), y)
        else:
            first = trial.scores[0]
            calibrator = calibration.fit(first.train_s, first.train_y)
        out.append(calibrator.apply(scores.s))
    return out


def backtest_rows(trial: Trial, probabilities: list[np.ndarray], seed: int) -> list[dict]:
    """One row per scored snapshot and a pooled row, each metric with its user-grouped 95% CI."""
    rows = []
    for scores, p in zip(trial.scores, probabilities):
        rows.append({"scope": "snapshot", "as_of_date": scores.fold.scored,
                     "train_as_of_first": scores.fold.train[0], "train_as_of_last": scores.fold.train[-1],
                     **evaluate.with_intervals(scores.y, p, scores.users, reps=200, seed=seed)})
    y = np.concatenate([f.y for f in trial.scores])
    users = np.concatenate([f.users for f in trial.scores])
    rows.append({"scope": "pooled", "as_of_date": None,
                 "train_as_of_first": trial.scores[0].fold.train[0],
                 "train_as_of_last": trial.scores[-1].fold.train[-1],
                 **evaluate.with_intervals(y, np.concatenate(probabilities), users, seed=seed)})
    return rows


def finish(best: dict[str, Trial], chosen: str, gaps: dict, prepared: Prepared, features: list[str]
           ) -> dict[str, ModelResult]:
    """Per model: calibrate on the selection folds, then measure on the test fold."""
    results = {}
    for model, trial in best.items():
        calibrator, threshold, _ = calibrate(trial, prepared.selection_folds)
        test = next(f for f in trial.scores if f.fold == prepared.test_fold)
        p = calibrator.apply(test.s)
        result = ModelResult(model, trial, trial.selection_ap(prepared), validation_se=gaps[model][1],
                             calibrator=calibrator, threshold=threshold,
                             metrics=evaluate.metrics(test.y, p, threshold))
        result.curves = {
            "pr": evaluate.thin(evaluate.pr_curve(test.y, p)),
            "roc": evaluate.thin(evaluate.roc_curve(test.y, p)),
            "calibration": evaluate.calibration_curve(test.y, p),
            "auc_pr": result.metrics["auc_pr"],
            "roc_auc": result.metrics["roc_auc"],
            "threshold": threshold,
            "params": trial.candidate.params,
        }
        results[model] = result
    return results


def prevalence_reference(prepared: Prepared, results: dict[str, ModelResult]) -> dict:
    """Everyone gets the selection folds' churn rate: the Brier bar and AUC-PR floor."""
    trial = next(iter(results.values())).trial
    y_sel, _, _ = trial.pooled(prepared.selection_folds)
    test = next(f for f in trial.scores if f.fold == prepared.test_fold)
    p = np.full(len(test.y), y_sel.mean())
    return {"model": "prevalence", "params": "{}", **evaluate.metrics(test.y, p, 1.0),
            "train_seconds": 0.0, "is_selected": False, "validation_auc_pr": float("nan")}


def refit(prepared: Prepared, candidate: Candidate, features: list[str], seed: int):
    """The saved model: the chosen candidate fitted on every label-complete date."""
    return fit_candidate(candidate, prepared.frame, features, seed)


def feature_ranges(pdf, features: list[str]) -> dict[str, list[float]]:
    """1st and 99th percentile of each input over the training rows: the what-if form's range."""
    return {f: [float(pdf[f].quantile(0.01)), float(pdf[f].quantile(0.99))] for f in features}


def train(spark: SparkSession, settings, models: list[str], quick: bool, seed: int, protocol: str) -> runs.RunRecord:
    if protocol == "lifetime":
        return train_lifetime(spark, settings, models, seed)
    progress = Progress()
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = artifacts.new_run_id(started_at)
    uf, uf_version = lakehouse.read_pinned(spark, "user_features")
    features = choose_features(feature_columns(uf))
    horizon = lakehouse.churn_horizon_days()
    progress("run %s: rolling origin, models %s, %s, seed %d", run_id, ",".join(models),
             "quick" if quick else "full grids", seed)
    prepared = prepare_time(uf, features, horizon)
    for line in prepared.split_text.splitlines():
        progress("split: %s", line)

    trials = run_trials(prepared, [c for m in models for c in grid(m, quick)], features, seed, progress)
    best = best_per_model(trials, prepared)
    chosen, gaps = select(best, prepared, seed)
    results = finish(best, chosen, gaps, prepared, features)
    for result in results.values():
        progress("%-8s selection AUC-PR %.3f (gap to best %.3f ± %.3f); test AUC-PR %.3f ROC-AUC %.3f",
                 result.model, result.validation_auc_pr, *gaps[result.model], result.metrics["auc_pr"],
                 result.metrics["roc_auc"])
    selected = results[chosen]
    progress("selected %s: %s", chosen, SELECTION_RULE)

    fitted = refit(prepared, selected.candidate, features, seed)
    calibrator, threshold, base_rate = calibrate(selected.trial, prepared.folds)
    bands = decision.risk_bands(threshold, base_rate)
    train_pdf = prepared.frame.select(*features).toPandas()
    importance = feature_importance(fitted, selected.candidate, features)
    for result in results.values():
        result.curves["feature_importance"] = importance if result is selected else {}
    progress("refit %s on all %d label-complete rows; calibration %s from out-of-time scores of %d folds",
             chosen, len(train_pdf), calibrator.describe(), len(prepared.folds))

    sel_dates = [f.scored for f in prepared.selection_folds]
    test_rows, test_pos = prepared.per_date[prepared.test_fold.scored]
    record = runs.RunRecord(
        run_id=run_id, started_at=started_at, protocol=protocol, git_commit=lakehouse.git_commit(),
        data_start=prepared.data_start, data_end=prepared.data_end, train_as_of=prepared.all_dates,
        validation_as_of=sel_dates, test_as_of=[prepared.test_fold.scored], features=features,
        train_rows=len(train_pdf), validation_rows=prepared.count(sel_dates)[0],
        test_rows=test_rows, test_positives=test_pos, prevalence=test_pos / max(test_rows, 1),
        selected_model=chosen, threshold=threshold, threshold_rule=decision.THRESHOLD_RULE,
        calibration=calibrator.describe(), risk_bands=bands, user_features_version=uf_version, fitted=fitted,
    )
    record.metrics = [
        {"model": r.model, "params": r.candidate.params_json, **r.metrics, "train_seconds": r.trial.fit_seconds,
         "is_selected": r is selected, "validation_auc_pr": r.validation_auc_pr, "validation_se": r.validation_se}
        for r in results.values()
    ] + [prevalence_reference(prepared, results)]

    exported = portable.export(fitted, chosen)
    medians = {k: float(v) for k, v in train_pdf.median().items()}
    medians.update(zip(exported["inputs"], exported["medians"]))  # the imputer's values win
    meta = {
        "run_id": run_id, "created_at": started_at.isoformat(), "protocol": protocol,
        "model": chosen, "params": selected.candidate.params, "features": features,
        "medians": medians, "importance": importance, "feature_ranges": feature_ranges(train_pdf, features),
        "calibrator": calibrator.to_dict(), "threshold": threshold,
        "threshold_rule": decision.THRESHOLD_RULE, "risk_bands": bands,
        "risk_bands_rule": decision.BANDS_RULE, "horizon_days": horizon,
        "trained_on": [str(d) for d in prepared.all_dates], "user_features_version": uf_version,
        "test_metrics": selected.metrics, "portable": exported,
    }
    backtest = backtest_rows(selected.trial, walk_forward_probabilities(selected.trial), seed)
    curves = {"run_id": run_id, "protocol": protocol, "selected": chosen, "prevalence": record.prevalence,
              "models": {r.model: _finite(r.curves) for r in results.values()}}
    record.model_path = str(artifacts.models_dir(settings.home) / run_id)
    # The model card (matplotlib, in Python) is drawn while Spark writes the model directory; both come before
    # the model_runs row, and only then does `latest` move to the run.
    with ThreadPoolExecutor(1) as pool:
        card = pool.submit(report.write, settings.home / "reports" / run_id, record, curves, prepared.split_text,
                           SELECTION_RULE, backtest)
        artifacts.save(settings.home, run_id, fitted, meta)
        record.report_path = str(card.result())
    record.finished_at = dt.datetime.now(dt.timezone.utc)
    lakehouse.append_run(spark, settings, runs.to_frame(spark, record))
    lakehouse.append_backtest(spark, settings, runs.backtest_frame(
        spark, runs.BacktestHeader(f"{run_id}-rolling", started_at, "rolling", chosen, run_id), backtest))
    artifacts.point_latest(settings.home, run_id)
    pooled = backtest[-1]
    progress("rolling backtest of %s over %d snapshots: ROC-AUC %.3f [%.3f, %.3f], AP %.3f = %.2fx prevalence",
             chosen, len(backtest) - 1, pooled["roc_auc"], pooled["roc_auc_lo"], pooled["roc_auc_hi"],
             pooled["average_precision"], pooled["ap_lift"])
    progress("saved model %s (models/latest); model card %s/model_card.md; appended %s.model_runs and "
             "%s.model_backtests", record.model_path, record.report_path, lakehouse.SCHEMA, lakehouse.SCHEMA)
    log.info("comparison on the test date (%s, %d rows, %d churners):\n%s",
             prepared.test_fold.scored, test_rows, test_pos, report.comparison_table(record))
    return record


def lifetime_frame(spark: SparkSession, seed: int) -> DataFrame:
    """Whole-history features of every user with a random `part` (train/validation/test), cached."""
    activity, users = lakehouse.read(spark, "daily_activity"), lakehouse.read(spark, "users")
    features = list(LIFETIME_FEATURES)
    return stable(split.random_user_split(model_frame(lifetime_features(activity, users), features), seed)).cache()


def train_lifetime(spark: SparkSession, settings, models: list[str], seed: int) -> runs.RunRecord:
    """The public projects' leaky protocol, for comparison only: whole-history features, random
    user split, label = ever churned. It saves no model."""
    progress = Progress()
    started_at = dt.datetime.now(dt.timezone.utc)
    run_id = artifacts.new_run_id(started_at)
    features = list(LIFETIME_FEATURES)
    frame = lifetime_frame(spark, seed)
    counts = {r["part"]: (int(r["n"]), int(r["pos"] or 0)) for r in
              frame.groupBy("part").agg(F.count("*").alias("n"), F.sum(LABEL).alias("pos")).collect()}
    for part in split.PARTS:
        _check(f"the {part} users", *counts.get(part, (0, 0)), "random split")
    part = {p: frame.where(F.col("part") == p).drop("part") for p in split.PARTS}
    span = lakehouse.read(spark, "daily_activity").agg(F.min("activity_date"), F.max("activity_date")).first()
    rows = []
    curves = {}
    for model in models:
        candidate = grid(model, True)[0]
        train_pdf = part["train"].select(LABEL, *features).toPandas()
        started = time.monotonic()
        if model in RULES:
            candidate = Candidate(model, choose_baseline_feature(train_pdf, features))
            seconds = time.monotonic() - started
            y_val, s_val, _ = rule_scores(candidate, train_pdf, part["validation"].select(LABEL, *features).toPandas())
            y, s, _ = rule_scores(candidate, train_pdf, part["test"].select(LABEL, *features).toPandas())
        else:
            fitted = fit_candidate(candidate, part["train"], features, seed)
            seconds = time.monotonic() - started
            y_val, s_val, _ = predict(fitted, part["validation"], model)
            y, s, _ = predict(fitted, part["test"], model)
        calibrator = calibration.fit(s_val, y_val)
        threshold = decision.choose_threshold(y_val, calibrator.apply(s_val))
        p = calibrator.apply(s)
        metrics = evaluate.metrics(y, p, threshold)
        rows.append({"model": model, "params": candidate.params_json, **metrics, "train_seconds": seconds,
                     "is_selected": False, "validation_auc_pr": evaluate.average_precision(y_val, s_val)})
        curves[model] = _finite({"pr": evaluate.thin(evaluate.pr_curve(y, p)),
                                 "roc": evaluate.thin(evaluate.roc_curve(y, p)),
                                 "calibration": evaluate.calibration_curve(y, p), "feature_importance": {},
                                 "auc_pr": metrics["auc_pr"], "roc_auc": metrics["roc_auc"]})
        progress("%-8s lifetime test AUC-PR %.3f ROC-AUC %.3f", model, metrics["auc_pr"], metrics["roc_auc"])
    best = max(rows, key=lambda r: np.nan_to_num(r["validation_auc_pr"], nan=-1.0))
    best["is_selected"] = True  # the best on validation, as that protocol would pick it; never saved
    split_text = (f"random split of users by seeded hash: 60% train, 20% validation, 20% test (seed {seed})\n"
                  "features over each user's whole history; label = ever churned")
    record = runs.RunRecord(
        run_id=run_id, started_at=started_at, protocol="lifetime", git_commit=lakehouse.git_commit(),
        data_start=span[0], data_end=span[1], train_as_of=[], validation_as_of=[], test_as_of=[],
        features=features, train_rows=counts["train"][0], validation_rows=counts["validation"][0],
        test_rows=counts["test"][0], test_positives=counts["test"][1],
        prevalence=counts["test"][1] / max(counts["test"][0], 1), metrics=rows, selected_model=best["model"],
    )
    record.report_path = str(report.write(settings.home / "reports" / run_id, record,
                                         {"run_id": run_id, "protocol": "lifetime", "selected": best["model"],
                                          "prevalence": record.prevalence, "models": curves}, split_text))
    record.finished_at = dt.datetime.now(dt.timezone.utc)
    lakehouse.append_run(spark, settings, runs.to_frame(spark, record))
    log.info("lifetime protocol: whole-history features and a random split leak the label; these "
             "numbers are optimistic by construction\n%s", report.comparison_table(record))
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


def build_parser(prog: str = "python -m models_ml.train") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Train churn models on sparkify.user_features, evaluate them honestly on a later "
                    "as_of date, save the selected model, a model card and a model_runs row. Reads "
                    "SPARKIFY_HOME and the other SPARKIFY_* settings, like `make build`.",
    )
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated candidates, any of {','.join(MODELS)} (default: all). "
                             "baseline is the best one-feature rule, reported as a reference")
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


def checked_models(args: argparse.Namespace) -> list[str]:
    """The candidates asked for; a UsageError, before Spark starts, for a wrong name or option mix."""
    if args.score and args.protocol != "time":
        raise UsageError("--score needs --protocol time: the lifetime protocol saves no model")
    return parse_models(args.models)


def run(spark: SparkSession, settings, args: argparse.Namespace) -> None:
    """Train (and with --score, score the latest as_of) on a session whose lakehouse lock is held."""
    models = checked_models(args)
    record = train(spark, settings, models, args.quick, args.seed, args.protocol)
    if args.score:
        from models_ml.score import score

        # the model just saved, as `latest`, scored with its pipeline in memory rather than read back
        score(spark, settings, None, None, pipeline=record.fitted)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    try:
        checked_models(args)
        with lakehouse.session("sparkify-train") as (settings, spark):
            run(spark, settings, args)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    except lakehouse.cfg.SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
