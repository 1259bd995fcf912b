"""Run dbt on the embedded lakehouse: `python -m sparkify.dbt build [dbt options]`.

It resolves the SPARKIFY_* settings (table format, Java, input path), holds the metastore lock,
prints which table format it chose and why, then invokes dbt in this process.
"""

from __future__ import annotations

import logging
import os
import sys

from sparkify import settings as cfg
from sparkify.spark import metastore_lock, remove_uncommitted_tables

log = logging.getLogger("sparkify")

# Commands that start Spark and so need Java. (A missing SPARKIFY_EVENTS is reported by the
# bronze model itself, so that selecting only downstream models works without raw data.)
NEEDS_SPARK = {"build", "run", "test", "seed", "snapshot", "docs", "show", "compile", "retry"}


def prepare(args: list[str]) -> cfg.Settings:
    """Validate the environment for this dbt command and export what the profile reads."""
    command = args[0] if args else "build"
    settings = cfg.load()
    if command in NEEDS_SPARK:
        cfg.check_java()
    _check_format_unchanged(settings)
    cfg.apply(settings)
    os.environ.setdefault("SPARKIFY_LOG4J", str(cfg.PROFILES_DIR / "log4j2.properties"))
    return settings


def _check_format_unchanged(settings: cfg.Settings) -> None:
    """A lakehouse built as Delta cannot be continued as Parquet (or back): say so plainly."""
    marker = settings.home / "table_format"
    chosen = settings.table_format.name
    if marker.exists() and marker.read_text().strip() != chosen:
        raise cfg.SettingsError(
            f"The lakehouse at {settings.home} holds {marker.read_text().strip()} tables, but this "
            f"run resolved the table format to {chosen} ({settings.table_format.reason}). Set "
            "SPARKIFY_TABLE_FORMAT to match, or rebuild with `make clean build`."
        )
    settings.home.mkdir(parents=True, exist_ok=True)
    marker.write_text(chosen + "\n")


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = list(sys.argv[1:] if argv is None else argv) or ["build"]
    try:
        settings = prepare(args)
        log.info("sparkify: table format %s (%s)", settings.table_format.name, settings.table_format.reason)
        with metastore_lock(settings.home):
            remove_uncommitted_tables(settings)
            from dbt.cli.main import dbtRunner

            result = dbtRunner().invoke(
                [*args, "--project-dir", str(cfg.PROJECT_ROOT), "--profiles-dir", str(cfg.PROFILES_DIR)]
            )
    except cfg.SettingsError as error:
        log.error("sparkify: %s", error)
        return 2
    if result.exception is not None and not result.success:
        log.error("sparkify: dbt failed: %s", result.exception)
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
