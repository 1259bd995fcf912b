"""A `make build` with nothing new to do finishes at once: `python -m sparkify.dbt build` skips dbt when
every input of the build is as the last successful build left it.

The state of a build is one digest over everything a build reads or depends on:
- the dbt arguments (a different selection or `--vars` is a different build);
- the raw files as checked before the build (path, size, modification time, lines, reason:
  `$SPARKIFY_HOME/raw_files.jsonl`, sparkify/raw_files.py);
- the project's files that define the build: dbt_project.yml, dbt_project/, profiles/ and sparkify/;
- the SPARKIFY_* and DBT_* settings and the installed dbt, dbt-spark, pyspark and delta-spark;
- every file of every table under the warehouse (path, size, modification time), so a table written,
  dropped or cleaned up since (by the ML script, `make maintain`, a killed run's cleanup) counts as a change.

The digest is stored after a build succeeds, with dbt's summary, and removed before any dbt command
that may write. The metastore is the one part not in the digest: Derby rewrites its files whenever a
JVM opens it, so a plain `dbt` command forgets the stored state instead (sparkify/dbt.py). A build the
same as the last one on the same inputs gives the same tables and the same test results, so it is
skipped; `--full-refresh` always runs, and so does the cluster target, whose metastore is a server.

A build that does run leaves out the seeds whose CSV file is as the last successful build loaded it, when
their table is still there: dbt reloads a seed whole at every build (drop, create, insert: 5 to 6 s of the
new-day build on es_small, before any model can start).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from sparkify import settings as cfg

STATE_NAME = "build_state.json"
# What defines a build besides the data: the project's own files (the checks before dbt live in sparkify/).
PROJECT_INPUTS = ("dbt_project.yml", "dbt_project", "profiles", "sparkify")
SEEDS = Path("dbt_project") / "seeds"
# dbt options that choose a subset of the nodes: a build given one may not load every seed.
SELECTING = {"--select", "-s", "--selector", "-m", "--models", "--resource-type", "--resource-types"}
PACKAGES = ("dbt-core", "dbt-spark", "pyspark", "delta-spark")
# Varies per process, not per build.
IGNORED_VARIABLES = {"SPARKIFY_PREPARED"}


def _files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)


def digest(settings: cfg.Settings, args: list[str], project_root: Path = cfg.PROJECT_ROOT,
           env: dict[str, str] | None = None) -> str:
    """The state of a build of `args` on this lakehouse: equal digests, equal builds."""
    env = os.environ if env is None else env
    h = hashlib.sha256()

    def part(*values: object) -> None:
        h.update(json.dumps(values, default=str).encode() + b"\n")

    part("args", *args)
    for name in sorted(env):
        if name.startswith(("SPARKIFY_", "DBT_")) and name not in IGNORED_VARIABLES:
            part("env", name, env[name])
    for name, value in sorted(settings.profile_env().items()):
        part("setting", name, value)
    for package in PACKAGES:
        try:
            part("package", package, version(package))
        except PackageNotFoundError:
            part("package", package, None)
    for entry in PROJECT_INPUTS:
        for path in _files(project_root / entry):
            part("project", str(path.relative_to(project_root)), hashlib.sha256(path.read_bytes()).hexdigest())
    raw_files = settings.home / cfg.RAW_FILES_NAME
    part("raw files", raw_files.read_text() if raw_files.is_file() else None)
    part("table format", (settings.home / "table_format").read_text() if (settings.home / "table_format").is_file() else None)
    part("metastore", (settings.home / "metastore_db").is_dir())
    for path in _files(settings.warehouse) if settings.warehouse.is_dir() else []:
        stat = path.stat()
        part("table file", str(path.relative_to(settings.warehouse)), stat.st_size, stat.st_mtime_ns)
    return h.hexdigest()


def seed_checksums(project_root: Path = cfg.PROJECT_ROOT) -> dict[str, str]:
    """Each seed (its CSV file's name without the suffix) and the checksum of its file."""
    return {path.stem: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted((project_root / SEEDS).glob("*.csv"))}


def loaded_seeds(settings: cfg.Settings, args: list[str], checksums: dict[str, str]) -> list[str]:
    """The seeds this build need not load: the last successful build loaded the same file (`checksums`, from
    seed_checksums), the metastore and the seed's table are still there, and the build is no full refresh."""
    if not skippable(settings, args) or not (settings.home / "metastore_db").is_dir():
        return []
    loaded = (stored_record(settings) or {}).get("seeds", {})
    return [name for name, checksum in checksums.items()
            if loaded.get(name) == checksum and settings.table_path(name).is_dir()
            and any(settings.table_path(name).iterdir())]


def seeds_in_tables(args: list[str], left_out: list[str], checksums: dict[str, str]) -> dict[str, str]:
    """The seeds whose file (`checksums`, read before the build) is in their table once a build of `args`
    that left out `left_out` succeeded: every seed, unless the build selected a subset of the nodes."""
    if SELECTING & set(args):
        return {name: checksum for name, checksum in checksums.items() if name in left_out}
    return checksums


def skippable(settings: cfg.Settings, args: list[str]) -> bool:
    """Whether a build of `args` may be skipped at all: never a full refresh, never on the cluster target."""
    return settings.target == "local" and "--full-refresh" not in args


def up_to_date(settings: cfg.Settings, args: list[str]) -> dict | None:
    """The stored record of the last successful build when this build would repeat it exactly, else None."""
    if not skippable(settings, args):
        return None
    stored = stored_record(settings)
    return stored if stored and stored.get("digest") == digest(settings, args) else None


def stored_record(settings: cfg.Settings) -> dict | None:
    """The record of the last successful build, or None when there is none or it cannot be read."""
    try:
        return json.loads((settings.home / STATE_NAME).read_text())
    except (OSError, ValueError):
        return None


def forget(home: Path) -> None:
    """Before a dbt command that may write: the stored state no longer describes the lakehouse."""
    (home / STATE_NAME).unlink(missing_ok=True)


def record(settings: cfg.Settings, args: list[str], summary: str, seeds: dict[str, str] | None = None) -> None:
    """After a successful build: its state, the checksums of the seed files in its tables (`seeds`, read
    before it started), when it finished, and dbt's summary of it."""
    state = {"digest": digest(settings, args), "args": args, "summary": summary, "seeds": seeds or {},
             "finished_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    path = settings.home / STATE_NAME
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, path)


def describe(stored: dict) -> str:
    return (f"sparkify: nothing to build: the raw files, the project, its settings and every table are as the "
            f"successful build of {stored['finished_at']} left them ({stored['summary']}). Any change to them "
            "builds again; `make build DBT_ARGS=--full-refresh` rebuilds regardless")
