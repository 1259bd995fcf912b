"""The embedded SparkSession for Python code (ML script, tests), built from the dbt profile.

Derby's embedded metastore admits one JVM at a time, and a second one fails deep inside Hive with
an obscure XSDB6 error. `metastore_lock` turns that into an immediate, clear message instead.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Iterator

import jinja2
import yaml

from sparkify import settings as cfg


log = logging.getLogger("sparkify")
DELTA_COMMIT = re.compile(r"^\d{20}\.json$")


def has_delta_commit(table_dir: Path) -> bool:
    """True once a Delta table folder holds its first commit (`_delta_log/00000000000000000000.json`)."""
    try:
        return any(DELTA_COMMIT.match(e.name) for e in os.scandir(table_dir / "_delta_log"))
    except OSError:
        return False


def check_format_unchanged(settings: cfg.Settings, record: bool) -> None:
    """A lakehouse built as Delta cannot be continued as Parquet (or back): say so plainly. `record`
    writes the chosen format down for the next command (for commands that may create tables)."""
    marker = settings.home / "table_format"
    chosen = settings.table_format.name
    if marker.exists() and marker.read_text().strip() != chosen:
        raise cfg.SettingsError(
            f"The lakehouse at {settings.home} holds {marker.read_text().strip()} tables, but this "
            f"run resolved the table format to {chosen} ({settings.table_format.reason}). Set "
            "SPARKIFY_TABLE_FORMAT to match, or rebuild with `make clean build`."
        )
    if record:
        settings.home.mkdir(parents=True, exist_ok=True)
        marker.write_text(chosen + "\n")


def remove_uncommitted_tables(settings: cfg.Settings) -> list[Path]:
    """Delete what a process killed while writing left behind; call with the metastore lock held, so no
    writer is alive. On Delta: table folders that never got a first commit (nothing read them, and Spark
    refuses to create a table over a non-empty folder). On Parquet: table folders whose first write never
    committed (files but no `_SUCCESS`, which Spark writes last), and Spark's `_temporary` folders inside
    the others (uncommitted output of a later write); a table with a `.spark-staging-*` folder, a partition
    overwrite killed while it ran, is emptied, so that the next build recomputes it from its parents.
    A lakehouse written in the other format is refused first (SettingsError): by this format's rules its
    committed tables look uncommitted."""
    check_format_unchanged(settings, record=False)
    if not settings.warehouse.is_dir():
        return []
    removed = []
    for schema in settings.warehouse.glob("*.db"):
        for table_dir in schema.iterdir():
            if not table_dir.is_dir():
                continue
            if settings.table_format.name == "delta":
                debris = [] if has_delta_commit(table_dir) else [table_dir]
            elif is_half_created_parquet(table_dir):
                debris = [table_dir]
            elif interrupted_partition_overwrite(table_dir) and table_dir.name not in ml_tables():
                # Spark replaces the partitions one by one, deleting each before moving the new one in: a kill
                # in between can lose partitions. Emptied, the table is recomputed whole by the next build.
                log.info("sparkify: emptying %s: a partition overwrite was killed while it committed, so "
                         "partitions may be missing; the next build recomputes the table from its parents", table_dir)
                debris = list(table_dir.iterdir())
            else:
                debris = [d for d in table_dir.iterdir() if d.is_dir() and is_staging_dir(d.name)]
            for path in debris:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink()
                removed.append(path)
                log.info("sparkify: removed %s, left by a process that was killed", path)
    return removed


def interrupted_partition_overwrite(table_dir: Path) -> bool:
    """A Parquet partition overwrite stages the new partitions in `.spark-staging-*` and removes that folder
    last: while it is there, the commit may have stopped between deleting an old partition and moving in
    the new one."""
    return any(d.name.startswith(".spark-staging") and d.is_dir() for d in table_dir.iterdir())


def ml_tables() -> set[str]:
    """The tables the ML script writes (the `ml` source of the dbt project): no build can recompute them."""
    sources = yaml.safe_load((cfg.PROJECT_ROOT / "dbt_project" / "models" / "staging" / "_sparkify__sources.yml")
                             .read_text())["sources"]
    return {table["name"] for source in sources if source["name"] == "ml" for table in source["tables"]}


def is_half_created_parquet(table_dir: Path) -> bool:
    """A Parquet table folder that holds something but no `_SUCCESS`: its creating job never committed, so
    no table was registered over it (the metastore entry comes last), and Spark refuses to create one
    there (LOCATION_ALREADY_EXISTS). Later writes keep the first `_SUCCESS`.
    A partitioned table written by a dynamic partition overwrite (bronze_events, churn_scores) has no
    `_SUCCESS` at its root, only partition folders (`event_date=...`), which Spark moves there at commit:
    one of them means a write committed."""
    names = {entry.name for entry in os.scandir(table_dir)}
    committed_partition = any("=" in n and not n.startswith((".", "_")) and (table_dir / n).is_dir()
                              for n in names)
    return bool(names) and "_SUCCESS" not in names and "_delta_log" not in names and not committed_partition


def is_staging_dir(name: str) -> bool:
    """Spark's folders for output not committed yet (a Parquet write in progress, or killed)."""
    return name == "_temporary" or name.startswith(".spark-staging")


def lakehouse_writer(home: Path) -> int | None:
    """The pid holding this lakehouse's lock if that process is alive, else None (read-only: no lock taken)."""
    try:
        holder = (home / "metastore.lock").read_text().split()
        pid = int(holder[1]) if holder[:1] == ["pid"] else None
    except (OSError, ValueError, IndexError):
        return None
    if pid is None:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        return pid
    return pid


class MetastoreBusy(cfg.SettingsError):
    """Another process holds this lakehouse's Derby metastore."""


@contextmanager
def metastore_lock(home: Path) -> Iterator[None]:
    """Hold an exclusive lock on $SPARKIFY_HOME for as long as this process uses its metastore."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "logs").mkdir(exist_ok=True)
    path = home / "metastore.lock"
    handle: IO[str] = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise MetastoreBusy(
            f"The lakehouse at {home} is in use by {holder}. Its embedded Derby metastore "
            "admits one Spark process at a time: wait for that one to finish, or point "
            "SPARKIFY_HOME somewhere else."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} ({' '.join(sys.argv)[:200]})\n")
    handle.flush()
    try:
        yield
    finally:
        handle.seek(0)
        handle.truncate()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def profile_conf(settings: cfg.Settings, target: str, key: str) -> dict[str, str]:
    """Render one mapping of Spark settings of a target in profiles/profiles.yml the way dbt does."""
    env = {**os.environ, **settings.profile_env()}

    def env_var(name: str, default: str | None = None) -> str:
        if name in env:
            return env[name]
        if default is None:
            raise cfg.SettingsError(f"profiles.yml needs the environment variable {name}")
        return default

    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined)
    jinja.filters["as_number"] = lambda value: value
    raw = yaml.safe_load((cfg.PROFILES_DIR / "profiles.yml").read_text())["sparkify"]
    return {
        key: jinja.from_string(str(value)).render(env_var=env_var)
        for key, value in raw["outputs"][target][key].items()
    }


def profile_parameters(settings: cfg.Settings) -> dict[str, str]:
    """The embedded session's Spark parameters: the `server_side_parameters` of the dbt target."""
    method = yaml.safe_load((cfg.PROFILES_DIR / "profiles.yml").read_text())["sparkify"]["outputs"][
        settings.target].get("method")
    if method != "session":
        raise cfg.SettingsError(
            f"dbt target {settings.target!r} is not an embedded session; on a cluster, run the ML script "
            "with spark-submit, which supplies the SparkSession: `make train` (or `python -m "
            "sparkify.cluster submit models_ml.train`) with SPARKIFY_TARGET=cluster"
        )
    return profile_conf(settings, settings.target, "server_side_parameters")


def get_session(settings: cfg.Settings, app_name: str = "sparkify"):
    """Return the active SparkSession (spark-submit) or start the embedded one from the profile."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if os.environ.get("SPARK_ENV_LOADED") or os.environ.get("SPARKIFY_SPARK_SUBMIT"):
        return SparkSession.builder.appName(app_name).enableHiveSupport().getOrCreate()
    cfg.check_java()
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in profile_parameters(settings).items():
        builder = builder.config(key, value)
    return builder.appName(app_name).getOrCreate()


def start_in_background(settings: cfg.Settings, app_name: str) -> threading.Thread | None:
    """Start the embedded session, and open its metastore, on a thread while dbt imports and parses the
    project; dbt's session method then gets this session (`getOrCreate`). A JVM start takes seconds, most of
    them on the second core while dbt's parse holds the first. A failure is left to dbt, which reports it
    when it opens its own session. Nothing to start on the cluster target."""
    if settings.target != "local":
        return None

    def start() -> None:
        try:
            get_session(settings, app_name).catalog.listDatabases()
        except Exception as error:  # noqa: BLE001 - dbt starts the session again and names the problem
            log.debug("sparkify: early Spark start failed: %s", error)

    thread = threading.Thread(target=start, name="sparkify-early-spark", daemon=True)
    thread.start()
    return thread
