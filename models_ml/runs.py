"""One `model_runs` row per training run: its schema and how a finished run becomes that row."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field

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
        record.model_path, record.report_path, metrics,
    )


def to_frame(spark: SparkSession, record: RunRecord) -> DataFrame:
    return spark.createDataFrame([to_row(record)], SCHEMA)
