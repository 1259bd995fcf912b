"""Small layout pieces shared by the pages: KPI cards, section cards, notes, badges, formatting."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import dash_bootstrap_components as dbc
import pandas as pd
from dash import dcc, html

from dashboard.theme import BAND_COLORS, BAND_LABELS, UNSCORED_COLOR

log = logging.getLogger(__name__)

# AG Grid's Theming API (the default since AG Grid 33), tuned to the app's palette and font.
GRID_THEME = {"function": (
    "themeQuartz.withParams({accentColor: '#2563eb', fontFamily: 'inherit', fontSize: 13, "
    "headerBackgroundColor: '#f8fafc', headerFontWeight: 600, borderColor: '#e2e8f0', "
    "rowHoverColor: '#eff6ff', wrapperBorderRadius: 8, spacing: 6})")}

GRAPH_CONFIG = {"displaylogo": False,
                "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d", "toggleSpikelines"]}


# -- formatting -------------------------------------------------------------------------------

def fmt_pct(value: Any, digits: int | None = None) -> str:
    """0.047 -> '4.7%', 0.31 -> '31%': one decimal where it matters, none where it is noise."""
    if value is None or pd.isna(value):
        return "–"
    value = float(value) * 100
    if digits is None:
        digits = 1 if abs(value) < 10 else 0
    return f"{value:.{digits}f}%"


def fmt_int(value: Any) -> str:
    return "–" if value is None or pd.isna(value) else f"{int(round(float(value))):,}"


def fmt_num(value: Any, digits: int = 1) -> str:
    return "–" if value is None or pd.isna(value) else f"{float(value):,.{digits}f}"


def fmt_date(value: Any, with_time: bool = False) -> str:
    if value is None or pd.isna(value):
        return "–"
    stamp = pd.Timestamp(value)
    return stamp.strftime("%d %b %Y %H:%M") if with_time else stamp.strftime("%d %b %Y")


def clip_text(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# -- pieces -------------------------------------------------------------------------------------

def page_header(title: str, subtitle: str | None = None, right: Any = None) -> html.Div:
    return html.Div(
        [html.Div([html.H1(title, className="page-title"),
                   html.P(subtitle, className="page-subtitle") if subtitle else None]),
         html.Div(right, className="page-header-right") if right is not None else None],
        className="page-header")


def kpi_card(label: str, value: str, hint: str | None = None, accent: str | None = None,
             card_id: str | None = None, text: bool = False) -> dbc.Card:
    """A headline number (or, with `text`, a short word such as a model name) with a hint below."""
    style = {"borderTopColor": accent} if accent else None
    body = [html.Div(label, className="kpi-label"),
            html.Div(value.replace("_", "_\u200b") if text else value, title=value,
                     className="kpi-value" + (" kpi-value-text" if text else "")),
            html.Div(hint, className="kpi-hint") if hint else None]
    kwargs = {"id": card_id} if card_id else {}
    return dbc.Card(dbc.CardBody(body), className="kpi-card h-100", style=style, **kwargs)


def section(title: str | None, children: Any, subtitle: str | None = None, right: Any = None,
            class_name: str = "", fill: bool = True) -> dbc.Card:
    """A white card with an optional title; `fill` stretches it to its row's height."""
    header = None
    if title:
        header = html.Div([html.Div([html.H2(title, className="section-title"),
                                     html.Div(subtitle, className="section-subtitle") if subtitle else None]),
                           right], className="section-header")
    return dbc.Card(dbc.CardBody([header, children]),
                    className=f"section-card {'h-100' if fill else ''} {class_name}".strip())


def chart(figure, graph_id: str | None = None, **kwargs) -> dcc.Graph:
    """A graph that fills its card's width at the figure's own height."""
    extra = {"id": graph_id} if graph_id else {}
    height = figure.layout.height or 320
    return dcc.Graph(figure=figure, config=GRAPH_CONFIG, responsive=True,
                     style={"height": f"{height}px", "width": "100%"}, **extra, **kwargs)


def notes_banner(notes: list[str]) -> html.Div | None:
    """Calm notes about missing or stale tables; never a traceback."""
    if not notes:
        return None
    return dbc.Alert([html.Div(n, className="note-line") for n in notes], color="warning",
                     className="calm-note", id="data-notes")


def empty_state(title: str, body: str, command: str | None = None) -> dbc.Card:
    return dbc.Card(dbc.CardBody([
        html.H2(title, className="empty-title"),
        html.P(body, className="empty-body"),
        html.Code(command, className="empty-command") if command else None,
    ]), className="empty-state")


def risk_badge(band: Any, large: bool = False) -> html.Span:
    name = str(band).lower() if band else ""
    color = BAND_COLORS.get(name, UNSCORED_COLOR)
    label = BAND_LABELS.get(name, "Not scored")
    return html.Span(label, className="risk-badge" + (" risk-badge-lg" if large else ""),
                     style={"backgroundColor": color})


def level_badge(level: Any) -> html.Span:
    name = str(level or "unknown").lower()
    return html.Span(name.capitalize(), className=f"level-badge level-{name}")


def safe(view: Callable[..., Any]) -> Callable[..., Any]:
    """Render a view; on any error, log it and show a calm message instead of a traceback."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("view %s failed", view.__name__)
            return dbc.Alert(
                "This view could not be prepared just now (the data may be changing). "
                "Please try again in a moment; the details are in the server log.",
                color="warning", className="calm-note")
    return wrapper


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Text cells that a spreadsheet would run as a formula, prefixed with ' so that they stay text."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype == object or pd.api.types.is_string_dtype(out[column]):
            out[column] = out[column].map(
                lambda v: "'" + v if isinstance(v, str) and v.startswith(FORMULA_PREFIXES) else v)
    return out
