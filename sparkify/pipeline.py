"""The whole pipeline in one process and one SparkSession: `python -m sparkify.pipeline [train options]`.

`make pipeline` runs it: dbt builds every model but `customers` and runs their data tests (the production build
of `make build`, skipped when its inputs are as the last successful build left them: sparkify/build_state.py), the
ML script trains, evaluates and scores the latest as_of (models_ml.train with --score), and dbt then builds and
tests `customers`, which joins those scores. dbt's session method takes Spark's existing session (`getOrCreate`), so the
JVM starts once, the project is parsed once and the lakehouse lock is held from start to end. The
options are the ML script's (`--quick`, `--models`, `--seed`); the single-step targets (`make build`,
`make train`, `make score`) stay. On the cluster target dbt talks to a Thrift Server and the ML script
runs under spark-submit, so there is no one process to share: run `make build train` there.
"""

from __future__ import annotations

import logging
import os
import sys
import time

from sparkify import build_state, dbt
from sparkify import settings as cfg
from sparkify.spark import get_session

log = logging.getLogger("sparkify.pipeline")

# The only model that reads the scores: built after them (sources in models/staging/_sparkify__sources.yml).
SCORES_READER = "customers"
APP_NAME = "sparkify-pipeline"


def run_dbt(args: list[str]):
    return dbt.invoke([*args, "--project-dir", str(cfg.PROJECT_ROOT)])


def main(argv: list[str] | None = None) -> int:
    from models_ml import train
    from models_ml.errors import UsageError

    args = train.build_parser(prog="python -m sparkify.pipeline").parse_args(argv)
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
    build_state.forget(settings.home)
    if stored:
        print(build_state.describe(stored))
    else:
        built = run_dbt([*dbt.PRODUCTION_BUILD, "--exclude", SCORES_READER])
        if not built.success:
            return 1
    now = step("build", started)
    try:
        train.run(get_session(settings, APP_NAME), settings, args)
    except (UsageError, cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = step("train and score", now)
    customers = run_dbt([*dbt.PRODUCTION_BUILD, "--select", SCORES_READER])
    if not customers.success:
        return 1
    step(SCORES_READER, now)
    # Build and customers together are `make build`: a later one with nothing new skips.
    if build_state.skippable(settings, dbt.PRODUCTION_BUILD):
        build_state.record(settings, dbt.PRODUCTION_BUILD,
                           stored["summary"] if stored else dbt.summary(built, customers))
    log.info("sparkify: pipeline done in %.1f s (%s)", time.perf_counter() - started,
             ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
