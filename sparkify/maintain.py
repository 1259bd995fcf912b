"""Delta table upkeep: `python -m sparkify.maintain` (or `make maintain`).

Incremental loads and partition replacements leave many small files; OPTIMIZE (compaction) rewrites
them into fewer files as a new version, and VACUUM deletes the files no version within the retention
period still needs. The retention is never shorter than Delta's default of 7 days, so a reader (the
dashboard) or a time-travel query of a recent version never loses its files. Both run through the
`deltalake` library, without a JVM: Spark's VACUUM lists files with thousands of tasks, which on a
laptop takes minutes per table. The lakehouse lock is held so that no build commits meanwhile.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sparkify import settings as cfg
from sparkify.spark import has_delta_commit, metastore_lock, remove_uncommitted_tables

log = logging.getLogger("sparkify")

MIN_RETAIN_HOURS = 168  # Delta's default (delta.deletedFileRetentionDuration = 7 days)


@dataclass(frozen=True)
class FileCounts:
    live: int  # data files in the current version
    on_disk: int  # Parquet files in the folder, including those kept for older versions


def data_files_on_disk(table_dir: Path) -> int:
    return sum(
        1 for root, dirs, names in os.walk(table_dir)
        if not os.path.relpath(root, table_dir).startswith("_delta_log")
        for name in names if name.endswith(".parquet")
    )


def file_counts(table, table_dir: Path) -> FileCounts:
    return FileCounts(len(table.file_uris()), data_files_on_disk(table_dir))


def maintain(settings: cfg.Settings, retain_hours: int) -> list[tuple[str, FileCounts, FileCounts]]:
    """Compact then vacuum every Delta table of the schema; return the file counts before and after."""
    from deltalake import DeltaTable

    schema_dir = settings.warehouse / f"{cfg.SCHEMA}.db"
    tables = sorted(p for p in schema_dir.iterdir() if p.is_dir() and has_delta_commit(p)) \
        if schema_dir.is_dir() else []
    report = []
    for table_dir in tables:
        table = DeltaTable(str(table_dir))
        before = file_counts(table, table_dir)
        table.optimize.compact()
        table = DeltaTable(str(table_dir))
        table.vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=True)
        after = file_counts(DeltaTable(str(table_dir)), table_dir)
        log.info("%-28s files in current version %5d -> %5d, on disk %5d -> %5d",
                 table_dir.name, before.live, after.live, before.on_disk, after.on_disk)
        report.append((table_dir.name, before, after))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.maintain",
        description="OPTIMIZE (compact small files) and VACUUM (delete files older versions no longer "
                    "need) every Delta table of the lakehouse at SPARKIFY_HOME, with file counts.")
    parser.add_argument("--retain-hours", type=int, default=MIN_RETAIN_HOURS,
                        help=f"VACUUM keeps the files of every version of the last N hours "
                             f"(default and minimum {MIN_RETAIN_HOURS}: readers and time travel stay safe)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        if args.retain_hours < MIN_RETAIN_HOURS:
            raise cfg.SettingsError(
                f"--retain-hours {args.retain_hours} is shorter than {MIN_RETAIN_HOURS} (7 days): a running "
                "reader or a time-travel query could lose files it needs")
        settings = cfg.load()
        if settings.table_format.name != "delta":
            log.info("sparkify: the lakehouse is %s (%s): OPTIMIZE and VACUUM are Delta operations, "
                     "nothing to do", settings.table_format.name, settings.table_format.reason)
            return 0
        with metastore_lock(settings.home):
            remove_uncommitted_tables(settings)
            report = maintain(settings, args.retain_hours)
    except cfg.SettingsError as error:
        log.error("sparkify: %s", error)
        return 2
    live = sum(b.live for _, b, _ in report), sum(a.live for _, _, a in report)
    disk = sum(b.on_disk for _, b, _ in report), sum(a.on_disk for _, _, a in report)
    log.info("maintained %d Delta tables: files in current versions %d -> %d, on disk %d -> %d "
             "(VACUUM retains %d hours)", len(report), *live, *disk, args.retain_hours)
    return 0


if __name__ == "__main__":
    sys.exit(main())
