"""The ML script's own tables: `model_runs` (one row per training run) and `model_backtests`
(one row per scored snapshot of a backtest, plus a pooled row): schemas and how rows are made."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, fields

import numpy as np
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    LongType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

METRIC_FIELDS = ("auc_pr", "roc_auc", "precision", "recall", "f1", "precision_at_top10", "brier",
                 "weighted_f1", "accuracy", "train_seconds")

METRICS_TYPE = ArrayType(StructType(
    [StructField("model", StringType()), StructField("params", StringType())]
    + [StructField(name, DoubleType()) for name in METRIC_FIELDS]
    + [StructField("is_selected", BooleanType())]
))

SCHEMA = StructType([
    StructField("run_id", StringType(), False),
    StructField("started_at", TimestampType()),
    StructField("finished_at", TimestampType()),
    StructField("git_commit", StringType()),
    StructField("protocol", StringType()),
    StructField("data_start", DateType()),
    StructField("data_end", DateType()),
    StructField("train_as_of", ArrayType(DateType())),
    StructField("validation_as_of", ArrayType(DateType())),
    StructField("test_as_of", ArrayType(DateType())),
    StructField("features", ArrayType(StringType())),
    StructField("train_rows", LongType()),
    StructField("validation_rows", LongType()),
    StructField("test_rows", LongType()),
    StructField("test_positives", LongType()),
    StructField("prevalence", DoubleType()),
    StructField("selected_model", StringType()),
    StructField("threshold", DoubleType()),
    StructField("threshold_rule", StringType()),
    StructField("calibration", StringType()),
    StructField("risk_bands", StringType()),
    StructField("model_path", StringType()),
    StructField("report_path", StringType()),
    StructField("metrics", METRICS_TYPE),
    # The Delta version of user_features the run read (null on Parquet): the training set by time travel.
    StructField("user_features_version", LongType()),
])


@dataclass
class RunRecord:
    """Everything `model_runs` and the model card say about one run."""

    run_id: str
    started_at: dt.datetime
    protocol: str
    git_commit: str | None
    data_start: dt.date | None
    data_end: dt.date | None
    train_as_of: list[dt.date]
    validation_as_of: list[dt.date]
    test_as_of: list[dt.date]
    features: list[str]
    train_rows: int
    validation_rows: int
    test_rows: int
    test_positives: int
    prevalence: float
    selected_model: str = ""
    threshold: float | None = None
    threshold_rule: str = ""
    calibration: str = ""
    risk_bands: dict = field(default_factory=dict)
    model_path: str | None = None
    report_path: str | None = None
    finished_at: dt.datetime | None = None
    metrics: list[dict] = field(default_factory=list)
    user_features_version: int | None = None
    # The saved model's fitted pipeline, in memory (no model_runs column): `train --score` scores with it.
    fitted: object | None = field(default=None, repr=False, compare=False)


def _clean(value):
    """NaN is not a value a table or JSON reader should see: store null instead."""
    return None if isinstance(value, float) and value != value else value


def to_row(record: RunRecord) -> tuple:
    metrics = [
        (m["model"], m["params"], *[_clean(float(m[k])) if m.get(k) is not None else None for k in METRIC_FIELDS],
         bool(m["is_selected"]))
        for m in record.metrics
    ]
    return (
        record.run_id, record.started_at, record.finished_at, record.git_commit, record.protocol,
        record.data_start, record.data_end, list(record.train_as_of), list(record.validation_as_of),
        list(record.test_as_of), list(record.features), int(record.train_rows),
        int(record.validation_rows), int(record.test_rows), int(record.test_positives),
        _clean(float(record.prevalence)), record.selected_model, _clean(record.threshold),
        record.threshold_rule, record.calibration, json.dumps(record.risk_bands, sort_keys=True),
        record.model_path, record.report_path, metrics, record.user_features_version,
    )


def to_frame(spark: SparkSession, record: RunRecord) -> DataFrame:
    return spark.createDataFrame([to_row(record)], SCHEMA)


# model_backtests: one row per scored snapshot of a backtest, plus its pooled row (scope 'pooled',
# as_of_date null). lo/hi bound a bootstrap 95% interval that resamples whole users.
BACKTEST_METRICS = ("roc_auc", "average_precision", "precision_top10", "brier")
BACKTEST_SCHEMA = StructType(
    [
        StructField("backtest_id", StringType(), False),
        StructField("created_at", TimestampType()),
        StructField("kind", StringType()),
        StructField("model", StringType()),
        StructField("model_source", StringType()),
        StructField("scope", StringType()),
        StructField("as_of_date", DateType()),
        StructField("train_as_of_first", DateType()),
        StructField("train_as_of_last", DateType()),
        StructField("rows", LongType()),
        StructField("positives", LongType()),
        StructField("prevalence", DoubleType()),
    ]
    + [StructField(f"{m}{suffix}", DoubleType()) for m in BACKTEST_METRICS for suffix in ("", "_lo", "_hi")]
    + [StructField("ap_lift", DoubleType())]
)


@dataclass(frozen=True)
class BacktestHeader:
    """What every row of one backtest shares. kind: 'rolling' (retrained per snapshot on this
    lakehouse) or 'model' (one saved model, from --model, scored on every snapshot)."""

    backtest_id: str
    created_at: dt.datetime
    kind: str
    model: str
    model_source: str


def backtest_frame(spark: SparkSession, header: BacktestHeader, rows: list[dict]) -> DataFrame:
    def value(row: dict, name: str):
        v = row.get(name)
        return _clean(float(v)) if isinstance(v, (float, np.floating)) else v

    names = [f.name for f in BACKTEST_SCHEMA.fields][len(fields(BacktestHeader)):]
    data = [(header.backtest_id, header.created_at, header.kind, header.model, header.model_source,
             *[int(value(r, n)) if n in ("rows", "positives") else value(r, n) for n in names]) for r in rows]
    return spark.createDataFrame(data, BACKTEST_SCHEMA)
