"""Colours and the plotly template, so that a risk band looks the same in every chart and table."""

from __future__ import annotations

import plotly.graph_objects as go
import plotly.io as pio

BANDS = ("high", "medium", "low")
BAND_COLORS = {"high": "#dc2626", "medium": "#f59e0b", "low": "#16a34a"}
BAND_LABELS = {"high": "High risk", "medium": "Medium risk", "low": "Low risk"}
UNSCORED_COLOR = "#94a3b8"

LEVELS = ("paid", "free")
LEVEL_COLORS = {"paid": "#7c3aed", "free": "#38bdf8"}

PRIMARY = "#2563eb"
MUTED = "#94a3b8"
INK = "#0f172a"
GRID = "#e2e8f0"
UPGRADE_COLOR = "#16a34a"
DOWNGRADE_COLOR = "#dc2626"

FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif'

TEMPLATE_NAME = "sparkify"


def _template() -> go.layout.Template:
    """Layout defaults only (no per-trace data defaults), so stamping it on a figure is cheap."""
    axis = dict(gridcolor=GRID, zeroline=False, linecolor=GRID, ticks="", automargin=True,
                title=dict(standoff=8))
    return go.layout.Template(layout=dict(
        font=dict(family=FONT, size=12, color=INK),
        colorway=[PRIMARY, "#0d9488", "#f59e0b", "#7c3aed", "#dc2626", "#64748b"],
        margin=dict(l=48, r=16, t=36, b=40),
        title=dict(font=dict(size=14), x=0, xanchor="left", y=0.98),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1,
                    bgcolor="rgba(0,0,0,0)", title_text=""),
        hoverlabel=dict(font=dict(family=FONT), bgcolor="white", bordercolor=GRID),
        hovermode="closest",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        xaxis=axis,
        yaxis=axis,
    ))


TEMPLATE = _template()
pio.templates[TEMPLATE_NAME] = TEMPLATE
# Every figure the dashboard draws uses it; as the default it is attached without a validated copy,
# which saves a few milliseconds per figure on the customer page.
pio.templates.default = TEMPLATE_NAME


def band_color(band: object) -> str:
    """The colour of a risk band, grey for anything unknown (unscored, churned)."""
    return BAND_COLORS.get(str(band).lower(), UNSCORED_COLOR) if band is not None else UNSCORED_COLOR
