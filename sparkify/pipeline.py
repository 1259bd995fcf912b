"""The whole pipeline in one process and one SparkSession: `python -m sparkify.pipeline [train options]`.

`make pipeline` runs it, daily: dbt builds every model but `customers` and runs their data tests (the production
build of `make build`, skipped when its inputs are as the last successful build left them: sparkify/build_state.py),
the current model (`models/latest`, as `make score`) scores the latest as_of, and dbt builds and tests `customers`,
which joins those scores. A new day costs the day, not a training. It trains instead (models_ml.train with --score,
a new `model_runs` row) with `--retrain`, when there is no model yet, and when user_features lacks a feature the
current model needs, so that a daily job does not stop on a model the lakehouse outgrew; one log line says which.
dbt's session method takes Spark's existing session (`getOrCreate`), so the JVM starts once, the project is parsed
once and the lakehouse lock is held from start to end. The other options are the ML script's (`--quick`,
`--models`, `--seed`), used when it trains; the single-step targets (`make build`, `make train`, `make score`) stay.
On the cluster target dbt talks to a Thrift Server and the ML script runs under spark-submit, so there is no one
process to share: run `make build train` there.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sparkify import build_state, dbt
from sparkify import settings as cfg
from sparkify.spark import get_session

if TYPE_CHECKING:
    from models_ml.artifacts import SavedModel

log = logging.getLogger("sparkify.pipeline")

# The only model that reads the scores: built after them (sources in models/staging/_sparkify__sources.yml).
SCORES_READER = "customers"
APP_NAME = "sparkify-pipeline"


def run_dbt(args: list[str]):
    return dbt.invoke([*args, "--project-dir", str(cfg.PROJECT_ROOT)])


def build_parser() -> argparse.ArgumentParser:
    """The ML script's training options plus --retrain: what `make pipeline TRAIN_ARGS=...` passes."""
    from models_ml import train

    parser = train.build_parser(prog="python -m sparkify.pipeline")
    parser.description = ("Build the lakehouse with dbt, score the latest as_of with the current model "
                          "(models/latest; trained first when there is none or it cannot score this lakehouse), "
                          "then build the customers mart: one process, one SparkSession. The training options "
                          "apply when it trains.")
    parser.add_argument("--retrain", action="store_true",
                        help="train, evaluate and save a new model (a model_runs row) and score with it, "
                             "instead of scoring with the current one (`make pipeline TRAIN_ARGS=--retrain`)")
    return parser


def current_model(spark, home: Path, retrain: bool) -> tuple[SavedModel | None, str]:
    """The saved model to score with, or None to train, and the one line that says which and why."""
    from models_ml import artifacts, lakehouse
    from models_ml.errors import UsageError
    from models_ml.features import feature_columns, missing_features

    if retrain:
        return None, "sparkify: pipeline trains a new model (--retrain)"
    if not (artifacts.models_dir(home) / artifacts.LATEST).is_file():
        return None, f"sparkify: pipeline trains a first model (none under {artifacts.models_dir(home)})"
    try:
        saved = artifacts.resolve(None, home)
    except UsageError as error:
        return None, f"sparkify: pipeline trains a new model: the current one cannot be read ({error})"
    missing = missing_features(feature_columns(lakehouse.read(spark, "user_features")), tuple(saved.features))
    if missing:
        return None, (f"sparkify: pipeline trains a new model: the current model {saved.run_id} cannot score this "
                      f"lakehouse (user_features lacks its feature column(s) {', '.join(missing)})")
    return saved, (f"sparkify: pipeline scores with the current model {saved.run_id} (no retraining; "
                   "TRAIN_ARGS=--retrain retrains)")


def main(argv: list[str] | None = None) -> int:
    from models_ml import train
    from models_ml.errors import UsageError
    from models_ml.score import score

    args = build_parser().parse_args(argv)
    args.score, args.protocol = True, "time"
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout)
    timings: list[tuple[str, float]] = []
    started = time.perf_counter()

    def step(name: str, since: float) -> float:
        now = time.perf_counter()
        timings.append((name, now - since))
        log.info("sparkify: pipeline step %s took %.1f s", name, now - since)
        return now

    try:
        train.checked_models(args)
        settings = cfg.load()
        if settings.target == "cluster":
            raise UsageError("the pipeline shares one embedded SparkSession; on the cluster target run "
                             "`make build train` (dbt through the Thrift Server, the ML script by spark-submit)")
    except (UsageError, cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if os.environ.get(dbt.PREPARED_VARIABLE) == str(os.getpid()):
        dbt.check_raw_files(settings)  # this process holds the lock and its session already (a test session)
    else:
        # Settings, table-format guard, lakehouse lock (held to the end), Spark starting on a thread from
        # then on, killed-run cleanup, raw files.
        code = dbt.prepare_process(dbt.PRODUCTION_BUILD, keep_build_state=True, start_spark=APP_NAME)
        if code:
            return code
    stored = build_state.up_to_date(settings, dbt.PRODUCTION_BUILD)
    if stored:
        seeds = stored.get("seeds", {})
    else:
        build_args, seeds = dbt.leave_out_loaded_seeds(settings,
                                                       [*dbt.PRODUCTION_BUILD, "--exclude", SCORES_READER])
    build_state.forget(settings.home)
    if stored:
        print(build_state.describe(stored))
    else:
        built = run_dbt(build_args)
        if not built.success:
            return 1
    now = step("build", started)
    try:
        spark = get_session(settings, APP_NAME)
        saved, why = current_model(spark, settings.home, args.retrain)
        log.info("%s", why)
        if saved is None:
            train.run(spark, settings, args)
        else:
            score(spark, settings, None, None)  # `python -m models_ml.score`: models/latest, the latest as_of
    except (UsageError, cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = step("train and score" if saved is None else "score", now)
    customers = run_dbt([*dbt.PRODUCTION_BUILD, "--select", SCORES_READER])
    if not customers.success:
        return 1
    step(SCORES_READER, now)
    # Build and customers together are `make build`: a later one with nothing new skips.
    if build_state.skippable(settings, dbt.PRODUCTION_BUILD):
        build_state.record(settings, dbt.PRODUCTION_BUILD,
                           stored["summary"] if stored else dbt.summary(built, customers), seeds)
    log.info("sparkify: pipeline done in %.1f s (%s)", time.perf_counter() - started,
             ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
