"""The whole pipeline in one process and one SparkSession: `python -m sparkify.pipeline [train options]`.

`make pipeline` runs it: dbt builds every model but `customers` and runs their data tests, the ML script trains, evaluates
and scores the latest as_of (models_ml.train with --score), and dbt then builds and tests `customers`,
which joins those scores. dbt's session method takes Spark's existing session (`getOrCreate`), so the
JVM starts once, the project is parsed once and the lakehouse lock is held from start to end. The
options are the ML script's (`--quick`, `--models`, `--seed`); the single-step targets (`make build`,
`make train`, `make score`) stay. On the cluster target dbt talks to a Thrift Server and the ML script
runs under spark-submit, so there is no one process to share: run `make build train` there.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time

from sparkify import dbt
from sparkify import settings as cfg
from sparkify.spark import get_session

log = logging.getLogger("sparkify.pipeline")

# The only model that reads the scores: built after them (sources in models/staging/_sparkify__sources.yml).
SCORES_READER = "customers"
# dbt's unit tests check the models' SQL on fixed inputs, not the data, so a production run leaves them to
# `make test` and `dbt build` (dbt's advice); every data test runs.
NOT_DATA = ["--exclude-resource-type", "unit_test"]


def run_dbt(args: list[str]) -> bool:
    return dbt.invoke([*args, "--project-dir", str(cfg.PROJECT_ROOT)])


def start_session(settings: cfg.Settings) -> None:
    """Start the SparkSession; a failure is left to dbt, which reports it when it opens its session."""
    try:
        get_session(settings, "sparkify-pipeline")
    except Exception as error:  # noqa: BLE001 - dbt starts the session again and names the problem
        log.debug("sparkify: early Spark start failed: %s", error)


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
        dbt.check_raw_files(settings)  # this process holds the lock already (a test session)
    else:
        # Settings, table-format guard, lakehouse lock (held to the end), killed-run cleanup, raw files.
        code = dbt.prepare_process(["build"])
        if code:
            return code
    # The JVM starts while dbt parses the project; dbt's session method then gets this session.
    threading.Thread(target=start_session, args=(settings,), daemon=True).start()
    if not run_dbt(["build", "--exclude", SCORES_READER, *NOT_DATA]):
        return 1
    now = step("build", started)
    try:
        train.run(get_session(settings, "sparkify-pipeline"), settings, args)
    except (UsageError, cfg.SettingsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    now = step("train and score", now)
    if not run_dbt(["build", "--select", SCORES_READER, *NOT_DATA]):
        return 1
    step(SCORES_READER, now)
    log.info("sparkify: pipeline done in %.1f s (%s)", time.perf_counter() - started,
             ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
