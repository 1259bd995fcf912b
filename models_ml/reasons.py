"""Reason codes: the features that push a customer's churn probability up, in plain words.

A feature's push is the drop in calibrated probability when only that feature is set to the
population median (saved with the model). The three largest positive pushes become the reasons.
The sentence comes from `reason_text`; `reason_text_col` builds the same sentence as a Spark
expression so scoring needs no Python UDF (tests check that both agree).
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

TOP_N = 3

# feature -> (kind, noun). Kinds: count/rate (generic "N× more/fewer"), and a few special ones.
FEATURE_TEXT: dict[str, tuple[str, str]] = {
    "days_since_last_activity": ("days_since", ""),
    "active_days_7d": ("count", "active days in the last 7 days"),
    "active_days_14d": ("count", "active days in the last 14 days"),
    "active_days_28d": ("count", "active days in the last 28 days"),
    "active_days_change_7d": ("change", ""),
    "songs_7d": ("count", "songs played in the last 7 days"),
    "songs_14d": ("count", "songs played in the last 14 days"),
    "songs_28d": ("count", "songs played in the last 28 days"),
    "songs_trend_7d": ("trend", ""),
    "songs_per_session_14d": ("rate", "songs per session"),
    "songs_per_session_28d": ("rate", "songs per session"),
    "sessions_7d": ("count", "sessions in the last 7 days"),
    "sessions_28d": ("count", "sessions in the last 28 days"),
    "thumbs_up_per_song_28d": ("rate", "thumbs up per song"),
    "thumbs_down_per_song_28d": ("rate", "thumbs down per song"),
    "adverts_per_song_28d": ("rate", "adverts per song"),
    "friends_added_28d": ("count", "friends added in the last 28 days"),
    "playlist_adds_28d": ("count", "playlist adds in the last 28 days"),
    "help_pages_28d": ("count", "help-page visits in the last 28 days"),
    "error_pages_28d": ("count", "errors in the last 28 days"),
    "settings_pages_28d": ("count", "settings-page visits in the last 28 days"),
    "downgrade_pages_28d": ("count", "downgrade-page visits in the last 28 days"),
    "upgrade_pages_28d": ("count", "upgrade-page visits in the last 28 days"),
    "thumbs_up_per_song_14d": ("rate", "thumbs up per song"),
    "thumbs_down_per_song_14d": ("rate", "thumbs down per song"),
    "adverts_per_song_14d": ("rate", "adverts per song"),
    "friends_added_14d": ("count", "friends added in the last 14 days"),
    "playlist_adds_14d": ("count", "playlist adds in the last 14 days"),
    "help_pages_14d": ("count", "help-page visits in the last 14 days"),
    "error_pages_14d": ("count", "errors in the last 14 days"),
    "settings_pages_14d": ("count", "settings-page visits in the last 14 days"),
    "downgrade_pages_14d": ("count", "downgrade-page visits in the last 14 days"),
    "upgrade_pages_14d": ("count", "upgrade-page visits in the last 14 days"),
    "sessions_14d": ("count", "sessions in the last 14 days"),
    "tenure_days": ("tenure", ""),
    "is_paid": ("paid", ""),
}


def _describe(feature: str) -> tuple[str, str]:
    return FEATURE_TEXT.get(feature, ("count", feature.replace("_", " ")))


# ---------- plain Python (what-if, tests) ----------

def _round(x: float, places: int) -> str:
    """Round half up, as Java's Formatter (Spark's format_string) does."""
    quantum = Decimal(1).scaleb(-places)
    return str(Decimal(repr(float(x))).quantize(quantum, rounding=ROUND_HALF_UP))


def fmt(x: float) -> str:
    """Whole numbers plainly, otherwise 1 decimal from 1 up and 2 decimals below."""
    if x == round(x) or abs(x) >= 10:
        return _round(x, 0)
    return _round(x, 1) if abs(x) >= 1 else _round(x, 2)


def fmt_ratio(r: float) -> str:
    """"3×" rather than "3.0×"; one decimal below 10, none above."""
    text = _round(r, 0) if r >= 10 else _round(r, 1)
    return text[:-2] if text.endswith(".0") else text


def reason_text(feature: str, value: float, median: float) -> str:
    """E.g. "3.0× more thumbs down per song than typical (0.12 vs 0.04)"."""
    kind, noun = _describe(feature)
    v, m = float(value), float(median)
    if kind == "days_since":
        return f"last active {fmt(v)} days before this snapshot (typical {fmt(m)})"
    if kind == "tenure":
        return f"customer for {'only ' if v < m else ''}{fmt(v)} days (typical {fmt(m)})"
    if kind == "paid":
        return f"on the {'paid' if v >= 0.5 else 'free'} tier (typical: {'paid' if m >= 0.5 else 'free'})"
    if kind == "change":
        if v == 0:
            return f"as many active days as the week before (typical change {fmt(m)})"
        return f"{fmt(abs(v))} {'more' if v > 0 else 'fewer'} active days than the week before (typical change {fmt(m)})"
    if kind == "trend":
        return f"played {fmt(v)}× as many songs as the week before (typical {fmt(m)}×)"
    pair = f"({fmt(v)} vs {fmt(m)})"
    if v > m:
        if m > 0 and v >= 1.5 * m:
            return f"{fmt_ratio(v / m)}× more {noun} than typical {pair}"
        return f"more {noun} than typical {pair}"
    if v < m:
        if v <= 0:
            return f"no {noun} (typical {fmt(m)})"
        if m >= 1.5 * v:
            return f"{fmt_ratio(m / v)}× fewer {noun} than typical {pair}"
        return f"fewer {noun} than typical {pair}"
    return f"{noun}: {fmt(v)} (typical {fmt(m)})"


def top_reasons(pushes: dict[str, float], values: dict[str, float], medians: dict[str, float],
                n: int = TOP_N) -> list[dict]:
    """The `n` largest positive pushes as {feature, value, median, text, push}, largest first."""
    ranked = sorted(((p, f) for f, p in pushes.items() if p > 0 and not np.isnan(values[f])),
                    key=lambda t: (-t[0], t[1]))[:n]
    return [{"feature": f, "value": float(values[f]), "median": float(medians[f]),
             "text": reason_text(f, values[f], medians[f]), "push": float(p)} for p, f in ranked]


# ---------- Spark ----------

def _round_col(x: Column, places: int) -> Column:
    return F.format_string(f"%.{places}f", x)


def fmt_col(x: Column) -> Column:
    return (F.when((x == F.round(x, 0)) | (F.abs(x) >= 10), _round_col(x, 0))
            .when(F.abs(x) >= 1, _round_col(x, 1))
            .otherwise(_round_col(x, 2)))


def fmt_ratio_col(r: Column) -> Column:
    return F.regexp_replace(F.when(r >= 10, _round_col(r, 0)).otherwise(_round_col(r, 1)), r"\.0$", "")


def reason_text_col(feature: Column, value: Column, median: Column, features: list[str]) -> Column:
    """The sentence of `reason_text` as one Spark expression. The kind and noun are looked up
    in literal maps, so the expression stays small (one branch per kind, not per feature)."""
    c, lit = F.concat, F.lit
    kinds = {f: _describe(f) for f in features}
    kind = F.element_at(F.create_map(*[x for f, (k, _) in kinds.items() for x in (lit(f), lit(k))]), feature)
    noun = F.element_at(F.create_map(*[x for f, (_, n) in kinds.items() for x in (lit(f), lit(n))]), feature)
    v, m = value, median
    v_txt, m_txt = fmt_col(v), fmt_col(m)
    pair = c(lit("("), v_txt, lit(" vs "), m_txt, lit(")"))
    generic = (
        F.when((v > m) & (m > 0) & (v >= 1.5 * m),
               c(fmt_ratio_col(v / m), lit("× more "), noun, lit(" than typical "), pair))
        .when(v > m, c(lit("more "), noun, lit(" than typical "), pair))
        .when(v <= 0, c(lit("no "), noun, lit(" (typical "), m_txt, lit(")")))
        .when(m >= 1.5 * v, c(fmt_ratio_col(m / v), lit("× fewer "), noun, lit(" than typical "), pair))
        .otherwise(c(lit("fewer "), noun, lit(" than typical "), pair))
    )
    tier = F.when(v >= 0.5, lit("paid")).otherwise(lit("free"))
    typical_tier = F.when(m >= 0.5, lit("paid")).otherwise(lit("free"))
    return (
        F.when(kind == "days_since",
               c(lit("last active "), v_txt, lit(" days before this snapshot (typical "), m_txt, lit(")")))
        .when(kind == "tenure", c(lit("customer for "), F.when(v < m, lit("only ")).otherwise(lit("")), v_txt,
                                  lit(" days (typical "), m_txt, lit(")")))
        .when(kind == "paid", c(lit("on the "), tier, lit(" tier (typical: "), typical_tier, lit(")")))
        .when((kind == "change") & (v == 0),
              c(lit("as many active days as the week before (typical change "), m_txt, lit(")")))
        .when(kind == "change", c(fmt_col(F.abs(v)), lit(" "), F.when(v > 0, lit("more")).otherwise(lit("fewer")),
                                  lit(" active days than the week before (typical change "), m_txt, lit(")")))
        .when(kind == "trend", c(lit("played "), v_txt, lit("× as many songs as the week before (typical "),
                                 m_txt, lit("×)")))
        .when(v == m, c(noun, lit(": "), v_txt, lit(" (typical "), m_txt, lit(")")))
        .otherwise(generic)
    )


def with_median_variants(df: DataFrame, features: list[str], medians: dict[str, float]) -> DataFrame:
    """Each row once as is (`reason_feature` null) and once per feature set to its median."""
    values = F.create_map(*[x for f in features for x in (F.lit(f), F.col(f))])
    exploded = (
        df.withColumn("reason_value_map", values)
        .withColumn("reason_feature", F.explode(F.array(F.lit(None).cast("string"), *[F.lit(f) for f in features])))
    )
    for f in features:
        exploded = exploded.withColumn(
            f, F.when(F.col("reason_feature") == f, F.lit(float(medians[f]))).otherwise(F.col(f))
        )
    return exploded.withColumn(
        "reason_value", F.element_at("reason_value_map", F.coalesce("reason_feature", F.lit(features[0])))
    ).drop("reason_value_map")


def collect_reasons(scored: DataFrame, keys: list[str], features: list[str],
                    medians: dict[str, float], n: int = TOP_N) -> DataFrame:
    """From `with_median_variants` rows scored into `probability`: one row per key with
    `churn_probability` and `reasons` (array of feature, value, median, text; largest push first)."""
    by_row = Window.partitionBy(*keys)
    median_map = F.create_map(*[x for f in features for x in (F.lit(f), F.lit(float(medians[f])))])
    pushes = (
        scored.withColumn("churn_probability",
                          F.max(F.when(F.col("reason_feature").isNull(), F.col("probability"))).over(by_row))
        .withColumn("push", F.col("churn_probability") - F.col("probability"))
    )
    candidates = (
        pushes.where(F.col("reason_feature").isNotNull() & (F.col("push") > 0) & F.col("reason_value").isNotNull())
        .withColumn("rank", F.row_number().over(by_row.orderBy(F.desc("push"), F.asc("reason_feature"))))
        .where(F.col("rank") <= n)
        .withColumn("reason_median", F.element_at(median_map, F.col("reason_feature")))
        .select(*keys, "rank", F.struct(
            F.col("reason_feature").alias("feature"),
            F.col("reason_value").alias("value"),
            F.col("reason_median").alias("median"),
            reason_text_col(F.col("reason_feature"), F.col("reason_value"), F.col("reason_median"), features)
            .alias("text"),
        ).alias("reason"))
        .groupBy(*keys)
        .agg(F.sort_array(F.collect_list(F.struct("rank", "reason"))).alias("ranked"))
        .select(*keys, F.col("ranked.reason").alias("reasons"))
    )
    base = pushes.where(F.col("reason_feature").isNull()).select(*keys, "churn_probability")
    empty = F.array().cast("array<struct<feature:string,value:double,median:double,text:string>>")
    return (base.join(candidates, list(keys), "left")
            .withColumn("reasons", F.coalesce(F.col("reasons"), empty)))
