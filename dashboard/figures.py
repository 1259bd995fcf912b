"""Plotly figures as pure functions of DataFrames: no I/O, no Dash, testable without a browser.

Each figure is described as plain dicts (traces, layout, shapes) and built with one validated
`go.Figure(...)` call: an order of magnitude faster than incremental `add_*`/`update_*` calls,
which matters because the customer page draws three figures per lookup.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.theme import (BAND_COLORS, BAND_LABELS, BANDS, DOWNGRADE_COLOR, LEVEL_COLORS,
                             LEVELS, MUTED, PRIMARY, UNSCORED_COLOR, UPGRADE_COLOR)

CURVE_LEGEND = dict(orientation="h", x=0, xanchor="left", y=-0.2, yanchor="top", font=dict(size=11))
CURVE_MARGIN = dict(l=48, r=16, t=36, b=8)
OTHER_MODEL_COLORS = ["#94a3b8", "#0d9488", "#f59e0b", "#7c3aed", "#64748b", "#db2777", "#a3a3a3"]


def _figure(data: list[dict], title: str | None = None, height: int = 320, **layout: Any) -> go.Figure:
    """One figure from trace dicts and layout keywords; the app's template is plotly's default."""
    return go.Figure(data=data, layout=dict(height=height, title=dict(text=title) if title else None, **layout))


def _vline(x: Any, color: str, dash: str = "dot", width: float = 1.5) -> dict:
    return dict(type="line", x0=x, x1=x, y0=0, y1=1, yref="paper", line=dict(color=color, dash=dash, width=width))


def _hline(y: float, color: str, dash: str = "dot") -> dict:
    return dict(type="line", x0=0, x1=1, xref="paper", y0=y, y1=y, line=dict(color=color, dash=dash, width=1.5))


def empty_figure(message: str, height: int = 320, title: str | None = None) -> go.Figure:
    """A blank chart carrying a short message, for when its data is not there yet."""
    return _figure([], title, height, xaxis=dict(visible=False), yaxis=dict(visible=False),
                   annotations=[dict(text=message, showarrow=False, font=dict(size=13, color=MUTED),
                                     xref="paper", yref="paper", x=0.5, y=0.5)])


# ---------------------------------------------------------------------------------------------
# Overview
# ---------------------------------------------------------------------------------------------

def daily_activity(totals: pd.DataFrame) -> go.Figure:
    """Daily active users (line) and events (bars, right axis) over time."""
    if totals is None or totals.empty:
        return empty_figure("No daily activity yet")
    data = [
        dict(type="bar", x=totals["activity_date"], y=totals["events"], name="Events", yaxis="y2",
             marker=dict(color="#cbd5e1"), hovertemplate="%{x|%a %d %b}: %{y:,} events<extra></extra>"),
        dict(type="scatter", x=totals["activity_date"], y=totals["active_users"], name="Active users",
             mode="lines", line=dict(color=PRIMARY, width=2.5),
             hovertemplate="%{x|%a %d %b}: %{y:,} active users<extra></extra>"),
    ]
    return _figure(data, "Daily active users and events", bargap=0.15,
                   yaxis=dict(title=dict(text="Active users"), rangemode="tozero"),
                   yaxis2=dict(title=dict(text="Events"), overlaying="y", side="right", showgrid=False,
                               rangemode="tozero", tickmode="auto", nticks=6, tickformat=",.0f"))


def histogram_edges(top: float, max_bins: int = 50) -> np.ndarray:
    """Bin edges from 0 past `top` with a round width (1, 2.5, 5 or 10 points), so cut-offs such as
    10% and 25% fall on edges and no bar straddles two risk bands."""
    top = min(max(top, 0.05), 1.0)
    width = next(w for w in (0.01, 0.025, 0.05, 0.1) if top / w <= max_bins)
    count = int(np.ceil(round(top / width, 6)))
    return np.round(np.arange(count + 1) * width, 6)


def probability_histogram(scores: pd.DataFrame, cutoffs: dict[str, float] | None = None) -> go.Figure:
    """How churn probabilities spread over active customers, coloured by risk band."""
    if scores is None or scores.empty:
        return empty_figure("No churn scores yet — run `make train`", title="Distribution of churn probability")
    edges = histogram_edges(float(scores["churn_probability"].max()))
    if scores["churn_probability"].max() >= edges[-1]:
        edges = np.append(edges, edges[-1] + (edges[1] - edges[0]))
    data = []
    for band in BANDS:
        counts, _ = np.histogram(scores.loc[scores["risk_band"] == band, "churn_probability"], bins=edges)
        data.append(dict(type="bar", x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges) * 0.95,
                         name=BAND_LABELS[band], marker=dict(color=BAND_COLORS[band]),
                         customdata=np.stack([edges[:-1], edges[1:]], axis=1),
                         hovertemplate="%{customdata[0]:.0%}–%{customdata[1]:.0%}: %{y:,} customers"
                                       "<extra></extra>"))
    shapes = [_vline(bound, BAND_COLORS.get(band, MUTED)) for band, bound in (cutoffs or {}).items()]
    return _figure(data, "Distribution of churn probability", barmode="stack", shapes=shapes,
                   xaxis=dict(title=dict(text="Churn probability"), tickformat=".0%"),
                   yaxis=dict(title=dict(text="Customers")))


def band_shares(frame: pd.DataFrame, group: str) -> pd.DataFrame:
    """Share of each risk band within each group (rows: groups; columns: bands; plus 'customers')."""
    counts = pd.crosstab(frame[group], frame["risk_band"])
    for band in BANDS:
        if band not in counts.columns:
            counts[band] = 0
    counts = counts[list(BANDS)]
    shares = counts.div(counts.sum(axis=1), axis=0)
    shares["customers"] = counts.sum(axis=1)
    return shares


def risk_by_group(frame: pd.DataFrame, group: str, title: str, top: int | None = None) -> go.Figure:
    """100%-stacked bars of risk bands per group (level, state, ...), riskiest at the top."""
    if frame is None or frame.empty or group not in frame.columns:
        return empty_figure("No churn scores yet — run `make train`", title=title)
    shares = band_shares(frame.dropna(subset=[group]), group)
    if top:
        shares = shares.loc[shares["customers"].nlargest(top).index]
    shares = shares.sort_values(["high", "medium"])
    labels = [f"{g} ({n:,})" for g, n in zip(shares.index, shares["customers"])]
    data = [dict(type="bar", y=labels, x=shares[band], orientation="h", name=BAND_LABELS[band],
                 marker=dict(color=BAND_COLORS[band]),
                 hovertemplate="%{y}: %{x:.0%} " + band + " risk<extra></extra>")
            for band in BANDS]
    return _figure(data, title, height=max(220, 60 + 26 * len(shares)), barmode="stack",
                   margin=dict(l=8, r=16, t=48, b=32), xaxis=dict(tickformat=".0%", range=[0, 1]),
                   yaxis=dict(automargin=True))


def gender_level_mix(users: pd.DataFrame) -> go.Figure:
    """Customers by gender, split by current level."""
    if users is None or users.empty:
        return empty_figure("No customers yet", title="Gender and level mix")
    counts = pd.crosstab(users["gender"].fillna("unknown"), users["current_level"].fillna("unknown"))
    labels = [{"F": "Female", "M": "Male"}.get(g, g) for g in counts.index]
    levels = [lv for lv in LEVELS if lv in counts.columns] + [c for c in counts.columns if c not in LEVELS]
    data = [dict(type="bar", x=labels, y=counts[level], name=str(level).capitalize(),
                 marker=dict(color=LEVEL_COLORS.get(level, MUTED)),
                 hovertemplate="%{x}, " + str(level) + ": %{y:,}<extra></extra>") for level in levels]
    return _figure(data, "Gender and level mix", barmode="group", yaxis=dict(title=dict(text="Customers")))


def engagement_scatter(customers: pd.DataFrame, max_points: int = 20_000) -> go.Figure:
    """Songs per active day against days active, coloured by risk band (grey: not scored)."""
    title = "Songs per day against days active"
    if customers is None or customers.empty:
        return empty_figure("No customers yet", title=title)
    frame = customers.dropna(subset=["active_days", "songs_per_active_day"])
    if len(frame) > max_points:
        frame = frame.sample(max_points, random_state=0)
    band = frame["risk_band"] if "risk_band" in frame.columns else pd.Series(None, index=frame.index)
    band = band.where(band.isin(BANDS), "not scored")
    data = []
    for name in ("not scored", "low", "medium", "high"):
        part = frame[band == name]
        if part.empty:
            continue
        data.append(dict(
            type="scattergl", x=part["active_days"], y=part["songs_per_active_day"], mode="markers",
            name=BAND_LABELS.get(name, "Not scored / churned"),
            marker=dict(color=BAND_COLORS.get(name, UNSCORED_COLOR), size=6,
                        opacity=0.45 if name in ("not scored", "low") else 0.85),
            customdata=part[["user_id"]].to_numpy(),
            hovertemplate="Customer %{customdata[0]}<br>%{x} days active<br>"
                          "%{y:.0f} songs per active day<extra></extra>"))
    return _figure(data, title, height=360, xaxis=dict(title=dict(text="Days active")),
                   yaxis=dict(title=dict(text="Songs per active day")))


# ---------------------------------------------------------------------------------------------
# Customer
# ---------------------------------------------------------------------------------------------

RATIO_CAP = 3.0  # bars stop at 300% of the median; the label still gives the real numbers


def activity_vs_median(activity: pd.DataFrame) -> go.Figure:
    """Each metric as a share of the population median (100% = typical, the mart's `_vs_median`), red
    where worse."""
    if activity is None or activity.empty:
        return empty_figure("Not scored: no population to compare with", height=260)
    ratio = [r if r is not None and r == r else np.nan for r in activity["ratio"]]
    worse = [(r < 1 if b == "higher" else r > 1) if r == r else False for r, b in zip(ratio, activity["better"])]
    text = [f"{_fmt(v)} vs {_fmt(m)}" for v, m in zip(activity["value"], activity["median"])]
    shown = [min(r, RATIO_CAP) if r == r else None for r in ratio]
    data = [dict(type="bar", y=list(activity["label"]), x=shown, orientation="h", text=text,
                 marker=dict(color=[BAND_COLORS["high"] if w else PRIMARY for w in worse]),
                 customdata=[[r] for r in ratio], textposition="outside", cliponaxis=False,
                 hovertemplate="%{y}: %{text} (median), %{customdata[0]:.0%} of the median<extra></extra>")]
    return _figure(data, None, height=50 + 34 * len(activity), margin=dict(l=8, r=16, t=8, b=28),
                   showlegend=False, shapes=[_vline(1, "#334155", dash="solid")],
                   xaxis=dict(range=[0, RATIO_CAP * 1.35], tickvals=[0, 1, 2, 3],
                              ticktext=["0", "median", "2×", "≥3×"]),
                   yaxis=dict(autorange="reversed"))


def songs_timeline(daily: pd.DataFrame, changes: pd.DataFrame | None = None,
                   churned_at: object = None) -> go.Figure:
    """Daily songs as bars coloured by level, with upgrade/downgrade (and cancellation) markers."""
    if daily is None or daily.empty:
        return empty_figure("No listening recorded", height=260)
    level = daily["last_level"] if "last_level" in daily.columns else pd.Series("free", index=daily.index)
    data = []
    for name in [lv for lv in LEVELS if (level == lv).any()]:
        part = daily[level == name]
        data.append(dict(type="bar", x=part["activity_date"], y=part["song_events"], name=f"Songs ({name})",
                         marker=dict(color=LEVEL_COLORS[name]),
                         hovertemplate="%{x|%a %d %b}: %{y} songs<extra></extra>"))
    top = float(daily["song_events"].max() or 1)
    for kind, color, symbol in (("upgrade", UPGRADE_COLOR, "triangle-up"),
                                ("downgrade", DOWNGRADE_COLOR, "triangle-down")):
        part = changes[changes["change_type"] == kind] if changes is not None and len(changes) else None
        if part is None or part.empty:
            continue
        data.append(dict(type="scatter", x=part["changed_at"], y=[top * 1.12] * len(part), mode="markers",
                         name=kind.capitalize(), marker=dict(symbol=symbol, size=13, color=color),
                         hovertemplate="%{x|%d %b %H:%M}: " + kind + "<extra></extra>"))
    shapes, annotations = [], []
    if churned_at is not None and not pd.isna(churned_at):
        shapes.append(_vline(pd.Timestamp(churned_at), BAND_COLORS["high"], dash="dash"))
        annotations.append(dict(x=pd.Timestamp(churned_at), y=1, yref="paper", text="Cancelled", showarrow=False,
                                xanchor="right", font=dict(color=BAND_COLORS["high"])))
    return _figure(data, None, height=260, margin=dict(l=48, r=16, t=24, b=32), bargap=0.2, shapes=shapes,
                   annotations=annotations, yaxis=dict(title=dict(text="Songs"), range=[0, top * 1.3]))


def score_history(history: pd.DataFrame, cutoffs: dict[str, float] | None = None) -> go.Figure:
    """The customer's churn probability at each scored as_of date."""
    if history is None or history.empty:
        return empty_figure("No earlier scores", height=180)
    frame = history.sort_values("as_of_date")
    colors = [BAND_COLORS.get(str(b).lower(), UNSCORED_COLOR) for b in frame["risk_band"]]
    data = [dict(type="scatter", x=frame["as_of_date"], y=frame["churn_probability"], mode="lines+markers",
                 line=dict(color="#64748b"), marker=dict(color=colors, size=10),
                 hovertemplate="as of %{x|%d %b}: %{y:.1%}<extra></extra>")]
    shapes = [_hline(bound, BAND_COLORS.get(band, MUTED)) for band, bound in (cutoffs or {}).items()]
    dates = pd.to_datetime(frame["as_of_date"])
    pad = pd.Timedelta(days=3)
    return _figure(data, None, height=180, margin=dict(l=48, r=16, t=12, b=28), showlegend=False,
                   shapes=shapes, yaxis=dict(tickformat=".0%", rangemode="tozero"),
                   xaxis=dict(tickformat="%d %b", range=[dates.min() - pad, dates.max() + pad]))


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def _curve_traces(curves: dict[str, dict[str, pd.DataFrame]], kind: str, x: str, y: str,
                  selected: str | None, **extra: Any) -> list[dict]:
    traces = []
    others = iter(OTHER_MODEL_COLORS * 3)
    for model in (m for m in curves if kind in curves[m]):
        frame = curves[model][kind]
        if kind == "calibration":
            frame = frame.sort_values(x)
        chosen = model == selected
        traces.append(dict(
            type="scatter", x=frame[x], y=frame[y], name=model + (" (selected)" if chosen else ""),
            mode="lines+markers" if kind == "calibration" else "lines",
            line=dict(color=PRIMARY if chosen else next(others), width=3.5 if chosen else 1.6, **extra),
            opacity=1.0 if chosen or selected is None else 0.6,
            hovertemplate=f"{model}: {x} %{{x:.2f}}, {y} %{{y:.2f}}<extra></extra>"))
    return traces


def _diagonal(name: str, top: float = 1.0) -> dict:
    return dict(type="scatter", x=[0, top], y=[0, top], mode="lines", name=name,
                line=dict(color=MUTED, dash="dot"), hoverinfo="skip")


def pr_curves(curves: dict, selected: str | None = None, prevalence: float | None = None) -> go.Figure:
    title = "Precision–recall (test)"
    traces = _curve_traces(curves, "pr", "recall", "precision", selected, shape="hv")
    if not traces:
        return empty_figure("No PR curves in this run's report", height=380, title=title)
    shapes, annotations = [], []
    if prevalence:
        shapes.append(_hline(prevalence, MUTED))
        annotations.append(dict(x=0, xref="paper", y=prevalence, text=f"base rate {prevalence:.1%}",
                                showarrow=False, xanchor="left", yanchor="bottom", font=dict(color=MUTED)))
    return _figure(traces, title, height=380, legend=CURVE_LEGEND, margin=CURVE_MARGIN, shapes=shapes,
                   annotations=annotations, xaxis=dict(title=dict(text="Recall"), range=[0, 1]),
                   yaxis=dict(title=dict(text="Precision"), range=[0, 1.02]))


def roc_curves(curves: dict, selected: str | None = None) -> go.Figure:
    title = "ROC (test)"
    traces = _curve_traces(curves, "roc", "fpr", "tpr", selected)
    if not traces:
        return empty_figure("No ROC curves in this run's report", height=380, title=title)
    return _figure([_diagonal("Chance")] + traces, title, height=380, legend=CURVE_LEGEND, margin=CURVE_MARGIN,
                   xaxis=dict(title=dict(text="False positive rate"), range=[0, 1]),
                   yaxis=dict(title=dict(text="True positive rate"), range=[0, 1.02]))


def calibration_plot(curves: dict, selected: str | None = None) -> go.Figure:
    title = "Calibration (test)"
    traces = _curve_traces(curves, "calibration", "predicted", "observed", selected)
    if not traces:
        return empty_figure("No calibration curves in this run's report", height=380, title=title)
    values = [v for c in curves.values() if "calibration" in c
              for v in list(c["calibration"]["predicted"]) + list(c["calibration"]["observed"])]
    top = min(1.0, max([0.05] + values) * 1.1)
    return _figure([_diagonal("Perfect", top)] + traces, title, height=380, legend=CURVE_LEGEND,
                   margin=CURVE_MARGIN,
                   xaxis=dict(title=dict(text="Predicted probability"), range=[0, top], tickformat=".0%"),
                   yaxis=dict(title=dict(text="Observed churn rate"), range=[0, top], tickformat=".0%"))


def feature_importance(importance: pd.DataFrame, top: int = 15) -> go.Figure:
    title = "Feature importance (selected model)"
    if importance is None or importance.empty:
        return empty_figure("No feature importance in this run's report", title=title)
    frame = importance.assign(size=importance["importance"].abs()).nlargest(top, "size").iloc[::-1]
    data = [dict(type="bar", x=frame["importance"], y=frame["feature"], orientation="h",
                 marker=dict(color=PRIMARY), hovertemplate="%{y}: %{x:.3f}<extra></extra>")]
    return _figure(data, title, height=max(260, 60 + 24 * len(frame)), margin=dict(l=8, r=16, t=40, b=32))


def run_history(runs: pd.DataFrame) -> go.Figure:
    """AUC-PR and ROC-AUC of each run's selected model over time, one line style per protocol."""
    if runs is None or runs.empty or "selected_auc_pr" not in runs.columns:
        return empty_figure("No training runs yet — run `make train`", height=260)
    frame = runs.sort_values("started_at")
    protocol = frame["protocol"] if "protocol" in frame.columns else pd.Series("time", index=frame.index)
    data = []
    for name, dash in (("time", "solid"), ("lifetime", "dot")):
        part = frame[protocol == name]
        if part.empty:
            continue
        for metric, color, label in (("selected_roc_auc", "#0d9488", "ROC-AUC"),
                                     ("selected_auc_pr", PRIMARY, "AUC-PR")):
            data.append(dict(type="scatter", x=part["started_at"], y=part[metric], mode="lines+markers",
                             name=f"{label} ({name})", line=dict(color=color, dash=dash),
                             customdata=part[["run_id"]].to_numpy(),
                             hovertemplate="%{customdata[0]}: %{y:.3f}<extra>" + label + "</extra>"))
    started = pd.to_datetime(frame["started_at"])
    pad = max((started.max() - started.min()) * 0.1, pd.Timedelta(hours=12))
    return _figure(data, None, height=260, margin=dict(l=40, r=16, t=40, b=32), yaxis=dict(range=[0, 1]),
                   xaxis=dict(tickformat="%d %b", range=[started.min() - pad, started.max() + pad]))


def backtest_snapshots(snapshots: pd.DataFrame) -> go.Figure:
    """Per-snapshot ROC-AUC (left axis) and average precision as a multiple of prevalence (right
    axis) over as_of_date, with the chance level of each (0.5 and 1×) dotted."""
    title = "Backtest: each scored snapshot"
    if snapshots is None or snapshots.empty:
        return empty_figure("No per-snapshot rows in this backtest", height=300, title=title)
    frame = snapshots.sort_values("as_of_date")
    hover = "%{x|%d %b %Y}: %{y:.3f}<extra>ROC-AUC</extra>"
    data = [
        dict(type="scatter", x=frame["as_of_date"], y=frame["roc_auc"], mode="lines+markers", name="ROC-AUC",
             line=dict(color="#0d9488"), hovertemplate=hover),
        dict(type="scatter", x=frame["as_of_date"], y=frame["ap_lift"], mode="lines+markers", yaxis="y2",
             name="Average precision ÷ prevalence", line=dict(color=PRIMARY, dash="dash"),
             hovertemplate="%{x|%d %b %Y}: %{y:.2f}×<extra>AP lift</extra>"),
    ]
    top_lift = max(2.0, float(pd.to_numeric(frame["ap_lift"], errors="coerce").max() or 0) * 1.15)
    return _figure(data, title, height=300, margin=dict(l=48, r=48, t=40, b=32), legend=CURVE_LEGEND,
                   shapes=[_hline(0.5, "#0d9488"),
                           dict(type="line", xref="paper", x0=0, x1=1, yref="y2", y0=1, y1=1,
                                line=dict(color=PRIMARY, dash="dot", width=1))],
                   xaxis=dict(tickformat="%d %b"),
                   yaxis=dict(title=dict(text="ROC-AUC"), range=[0, 1]),
                   yaxis2=dict(title=dict(text="AP ÷ prevalence"), overlaying="y", side="right",
                               range=[0, top_lift], showgrid=False))


# ---------------------------------------------------------------------------------------------
# What-if
# ---------------------------------------------------------------------------------------------

def probability_gauge(probability: float | None, baseline: float | None = None,
                      cutoffs: dict[str, float] | None = None) -> go.Figure:
    """A horizontal 0–100% bar with the band zones, the new probability and the starting one."""
    cut = {"medium": 0.10, "high": 0.25, **(cutoffs or {})}
    zones = [(0, cut["medium"], "low"), (cut["medium"], cut["high"], "medium"), (cut["high"], 1, "high")]
    shapes = [dict(type="rect", x0=lo, x1=hi, y0=0, y1=1, fillcolor=BAND_COLORS[band], opacity=0.18,
                   line=dict(width=0))
              for lo, hi, band in zones]
    data = []
    if baseline is not None:
        data.append(dict(type="scatter", x=[baseline], y=[0.5], mode="markers", name="Starting point",
                         marker=dict(symbol="line-ns", size=34, line=dict(width=3, color="#475569")),
                         hovertemplate="Starting point: %{x:.1%}<extra></extra>"))
    if probability is not None:
        data.append(dict(type="scatter", x=[probability], y=[0.5], mode="markers", name="What-if",
                         marker=dict(symbol="diamond", size=20, color=_zone_color(probability, cut)),
                         hovertemplate="What-if: %{x:.1%}<extra></extra>"))
    return _figure(data, None, height=110, margin=dict(l=16, r=16, t=8, b=28), showlegend=False, shapes=shapes,
                   xaxis=dict(range=[0, 1], tickformat=".0%", showgrid=False),
                   yaxis=dict(visible=False, range=[0, 1]))


def _zone_color(probability: float, cut: dict[str, float]) -> str:
    band = "high" if probability >= cut["high"] else "medium" if probability >= cut["medium"] else "low"
    return BAND_COLORS[band]


def _fmt(value: float | None) -> str:
    if value is None or value != value:
        return "–"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.0f}"
    return f"{value:.1f}"
