"""Run dbt on the lakehouse: `python -m sparkify.dbt build [dbt options]` (`make build`), or plain `dbt build`.

`make build` is the production build: every model and data test, not dbt's unit tests (PRODUCTION_BUILD), and
nothing at all when the last successful build had the same inputs (sparkify/build_state.py).

`prepare_process` is the one preparation of a dbt process, whichever way it starts: this module's
`main` calls it, and so does the venv's start-up hook (sparkify/venv_hook.py) when the process is the
plain `dbt` executable. It resolves the SPARKIFY_* settings (table format, Java or, on the cluster target, a
Thrift Server that answers, input path) and exports
what the profile reads, refuses to switch a lakehouse's table format, holds the metastore lock for the
rest of the process and prints which table format it chose and why.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
from contextlib import ExitStack

from sparkify import build_state, raw_files
from sparkify import settings as cfg
from sparkify.spark import check_format_unchanged, metastore_lock, remove_uncommitted_tables, start_in_background

log = logging.getLogger("sparkify")

# Commands that start Spark and so need Java and the lakehouse lock, and check new raw files first.
# (A missing SPARKIFY_EVENTS is reported by the bronze model itself, so that selecting only downstream
# models works without raw data.)
NEEDS_SPARK = {"build", "run", "test", "seed", "snapshot", "docs", "show", "compile", "retry", "debug"}
# dbt's global options that take a value, skipped when looking for the command.
_OPTIONS_WITH_VALUE = {"--log-format", "--log-level", "--log-path", "--target-path", "--profiles-dir",
                       "--project-dir", "--printer-width", "--log-format-file", "--log-level-file"}
# Held for the life of the process once `prepare_process` took the lock (the OS releases it at exit).
_held = ExitStack()
# Set for the life of a prepared process; the on-run-start check (macros/lakehouse_format.sql) requires it.
PREPARED_VARIABLE = "SPARKIFY_PREPARED"
# A production build (`make build`, `make pipeline`) runs every model and every data test. dbt's unit tests
# check the models' SQL on fixed inputs, not the data, so it leaves them to `make test` and a plain `dbt build`
# (dbt's own advice for production runs).
PRODUCTION_BUILD = ["build", "--exclude-resource-type", "unit_test"]


def dbt_command(args: list[str]) -> str:
    """The dbt sub-command in `args` ('docs serve' for that one), or '' for `dbt --version` and the like."""
    words = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in _OPTIONS_WITH_VALUE
        else:
            words.append(arg)
    if words[:2] == ["docs", "serve"]:
        return "docs serve"
    return words[0] if words else ""


def prepare(args: list[str]) -> cfg.Settings:
    """Validate the environment for this dbt command and export what the profile reads."""
    settings = cfg.load()
    writes = dbt_command(args) in NEEDS_SPARK
    if writes and settings.target == "local":
        cfg.check_java()
    if writes and settings.target == "cluster":
        check_thrift_server(settings.cluster)
    check_format_unchanged(settings, record=writes)
    cfg.apply(settings)
    os.environ.setdefault("SPARKIFY_LOG4J", str(cfg.PROFILES_DIR / "log4j2.properties"))
    os.environ.setdefault("DBT_PROJECT_DIR", str(cfg.PROJECT_ROOT))
    return settings


def check_thrift_server(cluster: cfg.Cluster, timeout: float = 5.0) -> None:
    """On the cluster target, fail at once, naming the address, when no Thrift Server answers there."""
    try:
        socket.create_connection((cluster.thrift_host, cluster.thrift_port), timeout=timeout).close()
    except OSError as error:
        raise cfg.SettingsError(
            f"no Spark Thrift Server answers at {cluster.thrift_host}:{cluster.thrift_port} "
            f"({error.strerror or error}): start the local cluster with `make cluster-up`, or point "
            "SPARKIFY_THRIFT_HOST and SPARKIFY_THRIFT_PORT at yours") from None


def check_raw_files(settings: cfg.Settings) -> None:
    """Check new raw files (sparkify/raw_files.py) and say which ones will not be loaded. Under the lock."""
    if not settings.events:
        return
    for rejected in (f for f in raw_files.check(settings.events, settings.home) if f.reason):
        print(f"sparkify: not loading {rejected.path}: {rejected.reason}; it is listed in the "
              "rejected_files table until it is replaced or removed", file=sys.stderr)


def prepare_process(args: list[str], keep_build_state: bool = False, start_spark: str | None = None) -> int:
    """Prepare this process to run `dbt <args>`; 0 when dbt may start, else 2 after printing why.
    A command that may write forgets the last build's state (sparkify/build_state.py) unless the caller
    (`make build`, `make pipeline`) checks and keeps it itself. `start_spark` names the application of an
    embedded session to start as soon as the lock is held, while the raw files are checked and dbt parses."""
    if not dbt_command(args):  # `dbt --version`, `dbt --help`: nothing to prepare
        return 0
    try:
        settings = prepare(args)
        if dbt_command(args) in NEEDS_SPARK:
            _held.enter_context(metastore_lock(settings.home))
            if start_spark:
                start_in_background(settings, start_spark)
            remove_uncommitted_tables(settings)
            check_raw_files(settings)
            if not keep_build_state:
                build_state.forget(settings.home)
            os.environ[PREPARED_VARIABLE] = str(os.getpid())
    except cfg.SettingsError as error:
        print(f"sparkify: {error}", file=sys.stderr)
        return 2
    print(f"sparkify: table format {settings.table_format.name} ({settings.table_format.reason})",
          file=sys.stderr)
    return 0


def invoke(args: list[str]):
    """Run `dbt <args>` in this prepared process; dbt's result (`.success`), its exception logged on failure."""
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(args)
    if result.exception is not None and not result.success:
        log.error("sparkify: dbt failed: %s", result.exception)
    return result


def summary(*results) -> str:
    """dbt's closing count of its runs, as it prints it: `PASS=30 WARN=0 ERROR=0 SKIP=0 NO-OP=2 TOTAL=32`."""
    statuses = [str(getattr(r.status, "value", r.status))
                for result in results for r in getattr(result.result, "results", None) or []]
    counts = {label: sum(s in names for s in statuses) for label, names in
              (("PASS", ("pass", "success")), ("WARN", ("warn",)), ("ERROR", ("error", "fail")),
               ("SKIP", ("skipped",)), ("NO-OP", ("no-op",)))}
    return " ".join(f"{label}={n}" for label, n in counts.items()) + f" TOTAL={len(statuses)}"


def leave_out_loaded_seeds(settings: cfg.Settings, args: list[str]) -> tuple[list[str], dict[str, str]]:
    """`args` without the seeds the last successful build loaded from the same files (sparkify/build_state.py),
    and the seed files the tables hold once this build succeeds, for its record. Call before `forget`."""
    checksums = build_state.seed_checksums()
    loaded = build_state.loaded_seeds(settings, args, checksums)
    if loaded:
        print(f"sparkify: seeds as the last build loaded them, not loaded again: {', '.join(loaded)}")
        args = [*args, "--exclude", *loaded]
    return args, build_state.seeds_in_tables(args, loaded, checksums)


def production_build(extra: list[str]) -> int:
    """`make build`: the production build, skipped when it would repeat the last successful one exactly."""
    args = [*PRODUCTION_BUILD, *extra]
    code = prepare_process(args, keep_build_state=True)
    if code:
        return code
    settings = cfg.load()
    stored = build_state.up_to_date(settings, args)
    if stored:
        print(build_state.describe(stored))
        return 0
    args, seeds = leave_out_loaded_seeds(settings, args)
    build_state.forget(settings.home)
    start_in_background(settings, "sparkify-build")
    result = invoke(args)
    if not result.success:
        return 1
    if build_state.skippable(settings, args):
        build_state.record(settings, args, summary(result), seeds)
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv) or ["build"]
    if args[0] == "build":
        return production_build(args[1:])
    code = prepare_process(args)
    if code:
        return code
    return 0 if invoke(args).success else 1


if __name__ == "__main__":
    sys.exit(main())
