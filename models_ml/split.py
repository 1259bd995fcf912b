"""Which rows train, validate and test: by as_of date (honest) or by user at random (lifetime).

Time protocol: the test date is the latest as_of whose label horizon is complete. A validation
date's labels must be known by the test date (v + horizon <= test), and a training date's labels
by its validation date (d + horizon <= v). So no label that lies in the test horizon, and no
row of the test date, ever reaches training, selection or calibration.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from models_ml.errors import UsageError

PARTS = ("train", "validation", "test")


@dataclass(frozen=True)
class Fold:
    """Train on `train` dates, score `validation`: one step of rolling-origin validation."""

    train: tuple[dt.date, ...]
    validation: dt.date


@dataclass(frozen=True)
class TimeSplit:
    """Folds oldest first; the last fold's model is the one calibrated, tested and saved."""

    folds: tuple[Fold, ...]
    test: dt.date

    @property
    def train(self) -> tuple[dt.date, ...]:
        return self.folds[-1].train

    @property
    def validation(self) -> tuple[dt.date, ...]:
        return tuple(fold.validation for fold in self.folds)

    def describe(self) -> str:
        lines = [
            f"fold {i}/{len(self.folds)}: train {_dates(fold.train)} -> validate {fold.validation}"
            for i, fold in enumerate(self.folds, 1)
        ]
        return "\n".join(lines + [f"test {self.test} (latest as_of with a complete label horizon)"])


def _dates(dates: tuple[dt.date, ...]) -> str:
    return f"{dates[0]}..{dates[-1]} ({len(dates)} as_of)" if len(dates) > 1 else str(dates[0])


def time_split(label_complete: list[dt.date], horizon_days: int, n_folds: int = 3) -> TimeSplit:
    """Rolling-origin folds ending at the last validation date whose labels precede the test date."""
    dates = sorted(set(label_complete))
    if not dates:
        raise UsageError("user_features has no as_of date with a complete label horizon: the data "
                         f"must span more than {horizon_days} days after the first as_of")
    horizon = dt.timedelta(days=horizon_days)
    test = dates[-1]
    folds: list[Fold] = []
    for validation in reversed([d for d in dates if d + horizon <= test]):
        train = tuple(d for d in dates if d + horizon <= validation)
        if not train or len(folds) == n_folds:
            break
        folds.append(Fold(train, validation))
    if not folds:
        raise UsageError(
            f"a time-based split needs label-complete as_of dates spanning two {horizon_days}-day "
            f"horizons before the test date; found {len(dates)} ({dates[0]}..{dates[-1]})"
        )
    return TimeSplit(tuple(reversed(folds)), test)


def rows_on(df: DataFrame, dates: tuple[dt.date, ...] | list[dt.date]) -> DataFrame:
    return df.where(F.col("as_of_date").isin(list(dates)))


def random_user_split(df: DataFrame, seed: int, shares: tuple[float, float] = (0.6, 0.2)) -> DataFrame:
    """Add `part` (train/validation/test) by a seeded hash of user_id: reproducible, by user."""
    bucket = F.pmod(F.xxhash64(F.col("user_id"), F.lit(seed)), F.lit(1000)) / 1000.0
    return df.withColumn(
        "part",
        F.when(bucket < shares[0], "train")
        .when(bucket < shares[0] + shares[1], "validation")
        .otherwise("test"),
    )
