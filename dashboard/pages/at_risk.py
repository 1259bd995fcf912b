"""At-risk list: active customers, most likely to cancel first, for a team lead's day."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard.components import (GRID_THEME, csv_safe, empty_state, fmt_date, fmt_int, kpi_card, notes_banner,
                                  page_header, safe)
from dashboard.context import lakehouse
from dashboard.theme import BAND_COLORS, BAND_LABELS, BANDS, PRIMARY

dash.register_page(__name__, path="/at-risk", name="At-risk", title="At-risk customers · Sparkify churn",
                   order=2)

GRID_FIELDS = ["user_id", "name", "churn_probability", "risk_band", "current_level", "state",
               "days_since_last_event", "songs_7d", "tenure_days", "reason_1"]
COLUMNS = [
    {"field": "user_id", "headerName": "Customer", "pinned": "left", "width": 130,
     "cellClass": "link-cell"},
    {"field": "name", "headerName": "Name", "minWidth": 160},
    {"field": "churn_probability", "headerName": "Probability", "sort": "desc", "width": 140,
     "type": "numericColumn", "filter": "agNumberColumnFilter",
     "valueFormatter": {"function": "params.value == null ? '' : d3.format('.1%')(params.value)"}},
    {"field": "risk_band", "headerName": "Band", "width": 110,
     "cellClassRules": {f"band-cell band-{b}": f"params.value == '{b}'" for b in BANDS}},
    {"field": "current_level", "headerName": "Level", "width": 100},
    {"field": "state", "headerName": "State", "width": 110},
    {"field": "days_since_last_event", "headerName": "Days idle", "width": 125, "type": "numericColumn",
     "filter": "agNumberColumnFilter", "headerTooltip": "Days since the last event"},
    {"field": "songs_7d", "headerName": "Songs 7d", "width": 125, "type": "numericColumn",
     "filter": "agNumberColumnFilter", "headerTooltip": "Songs in the last 7 days of data"},
    {"field": "tenure_days", "headerName": "Tenure", "width": 115, "type": "numericColumn",
     "filter": "agNumberColumnFilter", "headerTooltip": "Days since registration"},
    {"field": "reason_1", "headerName": "Main reason", "minWidth": 280, "flex": 1, "tooltipField": "reason_1"},
]


MAX_GRID_ROWS = 1000  # the browser gets the riskiest rows; the CSV export has them all


def filtered(frame: pd.DataFrame, bands=None, levels=None, states=None) -> pd.DataFrame:
    """The at-risk list for the chosen filters (empty selections mean 'all'), grid columns only."""
    keep = pd.Series(True, index=frame.index)
    if bands:
        keep &= frame["risk_band"].isin(bands)
    if levels:
        keep &= frame["current_level"].isin(levels)
    if states:
        keep &= frame["state"].isin(states)
    return frame.loc[keep, [c for c in GRID_FIELDS if c in frame.columns]]


def rows(part: pd.DataFrame, limit: int = MAX_GRID_ROWS) -> list[dict]:
    """Grid rows: the `limit` most at risk, JSON-ready (no NaN)."""
    part = part[[c for c in GRID_FIELDS if c in part.columns]].head(limit).copy()
    part["churn_probability"] = part["churn_probability"].round(4)
    for column in ("days_since_last_event", "songs_7d", "tenure_days"):
        if column in part.columns:
            part[column] = part[column].astype("Int64")
    return part.astype(object).where(part.notna(), None).to_dict("records")


def _options(frame: pd.DataFrame, column: str) -> list[dict]:
    if column not in frame.columns:
        return []
    return [{"label": str(v), "value": v} for v in sorted(frame[column].dropna().unique())]


@safe
def layout(**_query) -> html.Div:
    lh = lakehouse()
    notes = notes_banner(lh.notes("customers", "churn_scores"))
    frame = lh.at_risk()
    if frame is None:
        return html.Div([page_header("At-risk customers"), notes, empty_state(
            "No churn scores yet", "Train and score a model; the list of customers most likely to "
            "cancel appears here.", "make train")])
    as_of = frame["scored_as_of_date"].max() if len(frame) else None
    counts = frame["risk_band"].value_counts()
    cards = [kpi_card("Active customers scored", fmt_int(len(frame)), f"as of {fmt_date(as_of)}", PRIMARY)]
    cards += [kpi_card(BAND_LABELS[b], fmt_int(counts.get(b, 0)),
                       f"{counts.get(b, 0) / max(len(frame), 1):.0%} of scored", BAND_COLORS[b]) for b in BANDS]
    filters = dbc.Row([
        dbc.Col(dcc.Dropdown(id="risk-band-filter", options=[{"label": BAND_LABELS[b], "value": b} for b in BANDS],
                             multi=True, placeholder="All risk bands"), md=3),
        dbc.Col(dcc.Dropdown(id="risk-level-filter", options=_options(frame, "current_level"), multi=True,
                             placeholder="All levels"), md=3),
        dbc.Col(dcc.Dropdown(id="risk-state-filter", options=_options(frame, "state"), multi=True,
                             placeholder="All states"), md=3),
        dbc.Col(html.Div([
            html.Span(_count_text(len(frame)), id="risk-count", className="filter-count"),
            dbc.Button("Export CSV", id="risk-export", color="secondary", outline=True, size="sm",
                       className="text-nowrap"),
        ], className="d-flex align-items-center justify-content-end gap-3 h-100"), md=3),
    ], className="g-2 filter-bar")
    grid = dag.AgGrid(
        id="risk-grid", rowData=rows(frame), columnDefs=COLUMNS,
        defaultColDef={"sortable": True, "resizable": True, "filter": True, "floatingFilter": False},
        getRowId="params.data.user_id",
        dashGridOptions={"theme": GRID_THEME, "rowSelection": {"mode": "singleRow", "checkboxes": False,
                                                               "enableClickSelection": True},
                         "animateRows": False, "pagination": True, "paginationPageSize": 50,
                         "paginationPageSizeSelector": [25, 50, 100, 500],
                         "tooltipShowDelay": 300},
        style={"height": "640px", "width": "100%"}, className="risk-grid")
    return html.Div([
        page_header("At-risk customers",
                    "Active customers, most likely to cancel in the next 14 days first. Click a row to "
                    "open the customer; Export CSV gives every customer that matches the filters."),
        notes,
        dbc.Row([dbc.Col(c, xs=6, lg=3, className="mb-3") for c in cards], className="g-3"),
        dbc.Card(dbc.CardBody([filters, grid]), className="section-card"),
        dcc.Location(id="at-risk-nav", refresh="callback-nav"),
        dcc.Download(id="risk-download"),
    ])


def _count_text(total: int) -> str:
    if total > MAX_GRID_ROWS:
        return f"top {MAX_GRID_ROWS:,} of {total:,} customers"
    return f"{total:,} customers"


@callback(Output("risk-grid", "rowData"), Output("risk-count", "children"),
          Input("risk-band-filter", "value"), Input("risk-level-filter", "value"),
          Input("risk-state-filter", "value"), prevent_initial_call=True)
def apply_filters(bands, levels, states):
    frame = lakehouse().at_risk()
    if frame is None:
        return [], _count_text(0)
    part = filtered(frame, bands, levels, states)
    return rows(part), _count_text(len(part))


@callback(Output("risk-download", "data"), Input("risk-export", "n_clicks"),
          State("risk-band-filter", "value"), State("risk-level-filter", "value"),
          State("risk-state-filter", "value"), prevent_initial_call=True)
def export_csv(_clicks, bands, levels, states):
    """Every customer matching the filters, not only the rows in the browser."""
    frame = lakehouse().at_risk()
    if frame is None:
        return no_update
    part = filtered(frame, bands, levels, states)
    as_of = frame["scored_as_of_date"].max() if len(frame) else None
    name = f"sparkify-at-risk-{pd.Timestamp(as_of).date() if as_of is not None else 'latest'}.csv"
    return dcc.send_data_frame(csv_safe(part).to_csv, name, index=False)


@callback(Output("at-risk-nav", "href"), Input("risk-grid", "cellClicked"), prevent_initial_call=True)
def open_customer(cell):
    user = (cell or {}).get("rowId")
    if not user:
        return no_update
    return "/customer?" + urlencode({"user": user})
