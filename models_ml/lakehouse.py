"""The I/O edge: the SparkSession (same settings as dbt), reading the marts, writing
`model_runs` and `churn_scores` in the lakehouse's table format (Parquet or Delta)."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import yaml
from pyspark.sql import DataFrame, SparkSession

from models_ml.errors import UsageError
from sparkify import settings as cfg
from sparkify.spark import get_session, metastore_lock, remove_uncommitted_tables

log = logging.getLogger(__name__)

SCHEMA = cfg.SCHEMA
DEFAULT_HORIZON_DAYS = 14


@contextmanager
def session(app_name: str) -> Iterator[tuple[cfg.Settings, SparkSession]]:
    """Settings plus a SparkSession, holding the metastore lock for as long as it is used."""
    settings = cfg.load()
    with metastore_lock(settings.home):
        remove_uncommitted_tables(settings)
        spark = get_session(settings, app_name)
        spark.sparkContext.setLogLevel("ERROR")
        log.info("lakehouse %s (%s tables)", settings.home, settings.table_format.name)
        yield settings, spark


def churn_horizon_days() -> int:
    """The label horizon from dbt_project.yml, the one place that defines it."""
    try:
        data = yaml.safe_load((cfg.PROJECT_ROOT / "dbt_project.yml").read_text())
        return int(data["vars"]["churn_horizon_days"])
    except (OSError, KeyError, TypeError, ValueError):
        return DEFAULT_HORIZON_DAYS


def table_name(name: str) -> str:
    return f"{SCHEMA}.{name}"


def read(spark: SparkSession, name: str) -> DataFrame:
    if not spark.catalog.tableExists(table_name(name)):
        raise UsageError(f"table {table_name(name)} not found: run `make build` first")
    return spark.table(table_name(name))


def read_pinned(spark: SparkSession, name: str) -> tuple[DataFrame, int | None]:
    """A table at its current Delta version, and that version (None on Parquet): a build that commits
    meanwhile cannot change what is read, and the version reads the same rows back by time travel."""
    version = table_version(spark, name)
    if version is None:
        return read(spark, name), None
    return spark.sql(f"select * from {table_name(name)} version as of {version}"), version


def add_missing_columns(spark: SparkSession, name: str, frame: DataFrame) -> None:
    """Columns a newer release appends to a log table (model_runs, model_backtests) are added to the
    existing table first, so an append never fails on a lakehouse written by an older release."""
    full = table_name(name)
    if not spark.catalog.tableExists(full):
        return
    existing = set(spark.table(full).columns)
    missing = [f for f in frame.schema.fields if f.name not in existing]
    if missing:
        spark.sql(f"alter table {full} add columns ("
                  + ", ".join(f"{f.name} {f.dataType.simpleString()}" for f in missing) + ")")


def append_run(spark: SparkSession, settings: cfg.Settings, run: DataFrame) -> None:
    """Append one row to model_runs (creating the table the first time); on Delta one commit."""
    add_missing_columns(spark, "model_runs", run)
    run.write.format(settings.table_format.name).mode("append").saveAsTable(table_name("model_runs"))


def append_backtest(spark: SparkSession, settings: cfg.Settings, rows: DataFrame) -> None:
    """Append one backtest's rows to model_backtests (creating the table the first time)."""
    add_missing_columns(spark, "model_backtests", rows)
    rows.write.format(settings.table_format.name).mode("append").saveAsTable(table_name("model_backtests"))


def write_scores(spark: SparkSession, settings: cfg.Settings, scores: DataFrame) -> None:
    """Replace only the (as_of_date, model_run_id) partitions present in `scores`; keep history.

    On Delta the replacement is one commit (`replaceWhere`), so readers see the old scores or the
    new ones, never a mix; on Parquet it is a dynamic partition overwrite."""
    name = table_name("churn_scores")
    partitions = ["as_of_date", "model_run_id"]
    if not spark.catalog.tableExists(name):
        (scores.write.format(settings.table_format.name).partitionBy(*partitions)
         .saveAsTable(name))
        return
    if settings.table_format.name == "delta":
        columns = spark.table(name).columns
        keys = scores.select(*partitions).distinct().collect()
        condition = " or ".join(
            f"(as_of_date = date'{row['as_of_date']}' and model_run_id = '{row['model_run_id']}')"
            for row in keys
        ) or "false"
        (scores.select(*columns).write.format("delta").mode("overwrite")
         .option("replaceWhere", condition).saveAsTable(name))
        return
    spark.conf.set("spark.sql.sources.partitionOverwriteMode", "dynamic")
    columns = spark.table(name).columns
    scores.select(*columns).write.option("partitionOverwriteMode", "dynamic").insertInto(name, overwrite=True)
    spark.catalog.refreshTable(name)


def table_version(spark: SparkSession, name: str) -> int | None:
    """The current Delta version of a table (to read that training set back by time travel); None on Parquet."""
    full = table_name(name)
    if not spark.catalog.tableExists(full):
        raise UsageError(f"table {full} not found: run `make build` first")
    provider = [row.data_type for row in spark.sql(f"describe table extended {full}").collect()
                if row.col_name == "Provider"]
    if not provider or provider[0].lower() != "delta":
        return None
    from delta.tables import DeltaTable

    return int(DeltaTable.forName(spark, full).history(1).select("version").first()[0])


def git_commit(root: Path = cfg.PROJECT_ROOT) -> str | None:
    """HEAD's commit read from .git without running git (absent outside a checkout)."""
    git = root / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head
        ref = head[5:]
        if (git / ref).is_file():
            return (git / ref).read_text().strip()
        for line in (git / "packed-refs").read_text().splitlines():
            if line.endswith(" " + ref):
                return line.split()[0]
    except OSError:
        return None
    return None
