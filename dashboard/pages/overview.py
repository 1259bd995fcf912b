"""Overview: who the customers are, how they listen, and how much churn risk there is today."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, callback, dcc, html, no_update

from dashboard import figures
from dashboard.components import (chart, empty_state, fmt_date, fmt_int, fmt_num, fmt_pct, kpi_card,
                                  notes_banner, page_header, safe, section)
from dashboard.context import lakehouse
from dashboard.data import risk_cutoffs
from dashboard.theme import BAND_COLORS, PRIMARY

dash.register_page(__name__, path="/", name="Overview", title="Overview · Sparkify churn", order=0)


@safe
def layout(**_query) -> html.Div:
    lh = lakehouse()
    notes = notes_banner(lh.notes("customers", "daily_activity", "churn_scores"))
    overview = lh.overview()
    if overview is None:
        return html.Div([page_header("Overview"), notes, empty_state(
            "No customers yet", "Build the lakehouse first; this page fills in as soon as the "
            "customers table exists.", "make build")])
    k = overview["kpis"]
    first, last = k.get("date_range", (None, None))
    scored = k.get("scored")
    cards = [
        kpi_card("Customers", fmt_int(k["customers"]), "in the data", PRIMARY),
        kpi_card("Active last 7 days", fmt_int(k.get("active_7d")),
                 fmt_pct(k["active_7d"] / k["customers"]) + " of customers" if k.get("active_7d") is not None
                 and k["customers"] else None, PRIMARY),
        kpi_card("Churned", fmt_pct(k.get("churned_share")), "share who cancelled in the data", "#64748b"),
        kpi_card("High risk", fmt_int(k.get("high_risk")) if scored is not None else "–",
                 (f"of {scored:,} scored, as of {fmt_date(k.get('scores_as_of'))}" if scored is not None
                  else "no scores yet: run make train"), BAND_COLORS["high"], card_id="kpi-high-risk"),
        kpi_card("Median days active", fmt_num(k.get("median_days_active"), 0), "per customer", "#0d9488"),
        kpi_card("Median songs per day", fmt_num(k.get("median_songs_per_day"), 0), "per active day",
                 "#0d9488"),
        kpi_card("Data range", _span(first, last), _span_hint(first, last), "#64748b", text=True),
    ]
    customers = lh.customers()
    current = lh.current_scores()
    active = current[~current["is_churned"].eq(True)] if current is not None else None
    runs = lh.model_runs()
    cutoffs = risk_cutoffs(runs.latest if runs else None)
    return html.Div([
        page_header("Overview", "Customers, listening and churn risk across the whole service"),
        notes,
        dbc.Row([dbc.Col(c, xs=6, md=4, xl=True, className="mb-3") for c in cards], className="g-3 kpi-row"),
        dbc.Row([
            dbc.Col(section(None, chart(figures.daily_activity(overview["daily_totals"]))), lg=7,
                    className="mb-3"),
            dbc.Col(section(None, chart(figures.probability_histogram(active, cutoffs))), lg=5, className="mb-3"),
        ], className="g-3"),
        dbc.Row([
            dbc.Col(section(None, chart(figures.risk_by_group(active, "current_level", "Risk by level"))),
                    lg=4, className="mb-3"),
            dbc.Col(section(None, chart(figures.risk_by_group(active, "state", "Risk by state (10 largest)",
                                                              top=10))), lg=4, className="mb-3"),
            dbc.Col(section(None, chart(figures.gender_level_mix(customers))), lg=4, className="mb-3"),
        ], className="g-3"),
        section(None, html.Div([
            chart(figures.engagement_scatter(customers), graph_id="overview-scatter"),
            html.Div("Click a point to open that customer.", className="chart-hint"),
        ])),
        dcc.Location(id="overview-nav", refresh="callback-nav"),
    ])


def _span(first, last) -> str:
    if first is None or last is None:
        return "–"
    return f"{first:%-d %b} – {last:%-d %b}"


def _span_hint(first, last) -> str | None:
    if first is None or last is None:
        return None
    years = f"{first:%Y}" if first.year == last.year else f"{first:%Y}–{last:%Y}"
    return f"{years} · {(last - first).days + 1} days"


@callback(Output("overview-nav", "href"), Input("overview-scatter", "clickData"), prevent_initial_call=True)
def open_clicked_customer(click):
    try:
        user = click["points"][0]["customdata"][0]
    except (TypeError, KeyError, IndexError):
        return no_update
    return "/customer?" + urlencode({"user": user})
