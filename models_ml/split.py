"""Which rows train and score: rolling origin over as_of dates (honest), or by user at random (lifetime).

Rolling origin: every label-complete as_of date T with earlier training data is a fold. It trains
on the dates whose label horizon has ended by T (d + horizon <= T), so no label that could only
be known after T reaches the model that scores T. The last fold (the latest label-complete date)
is the test fold; model selection looks only at the folds before it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from models_ml.errors import UsageError

PARTS = ("train", "validation", "test")
MIN_FOLDS = 3  # at least two to choose on, one to test


@dataclass(frozen=True)
class Fold:
    """Train on `train` dates, score `scored`: one step of the rolling-origin backtest."""

    train: tuple[dt.date, ...]
    scored: dt.date

    def describe(self) -> str:
        return f"train {_dates(self.train)} -> score {self.scored}"


def _dates(dates: tuple[dt.date, ...]) -> str:
    return f"{dates[0]}..{dates[-1]} ({len(dates)} as_of)" if len(dates) > 1 else str(dates[0])


def rolling_folds(label_complete: list[dt.date], horizon_days: int, min_folds: int = 1) -> list[Fold]:
    """One fold per label-complete date that has at least one date whose horizon ends by it."""
    dates = sorted(set(label_complete))
    horizon = dt.timedelta(days=horizon_days)
    folds = []
    for scored in dates:
        train = tuple(d for d in dates if d + horizon <= scored)
        if train:
            folds.append(Fold(train, scored))
    if len(folds) < min_folds:
        needed = min_folds + 1 + -(-horizon_days // 7) - 1
        raise UsageError(
            f"a rolling backtest needs at least {min_folds} as_of dates with earlier training data, i.e. "
            f"about {needed} weekly label-complete as_of dates for a {horizon_days}-day horizon; "
            f"user_features has {len(dates)}"
            + (f" ({dates[0]}..{dates[-1]})" if dates else "")
            + ": use a longer event log"
        )
    return folds


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
