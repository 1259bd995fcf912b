"""Customer: one person on the phone — who they are, how they listen, how likely they are to leave, why."""

from __future__ import annotations

from urllib.parse import urlencode

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
import pandas as pd
from dash import Input, Output, State, callback, dcc, html, no_update

from dashboard import figures
from dashboard.components import (GRID_THEME, chart, clip_text, empty_state, fmt_date, fmt_int, fmt_num, fmt_pct,
                                  level_badge, notes_banner, page_header, risk_badge, safe, section)
from dashboard.context import lakehouse
from dashboard.data import MAX_QUERY_CHARS, CustomerView, Lookup, risk_cutoffs
from dashboard.theme import BAND_COLORS, UNSCORED_COLOR

dash.register_page(__name__, path="/customer", name="Customer", title="Customer · Sparkify churn", order=1)


def customer_href(user_id: str) -> str:
    return "/customer?" + urlencode({"user": user_id})


def layout(user: object = None, **_query) -> html.Div:
    query = user[0] if isinstance(user, list) and user else user
    query = "" if query is None else str(query)[:MAX_QUERY_CHARS + 1]
    search = html.Div([
        dbc.InputGroup([
            dbc.Input(id="customer-search", value=query.strip()[:MAX_QUERY_CHARS], type="search",
                      placeholder="Customer number or name", debounce=False, autocomplete="off",
                      maxLength=MAX_QUERY_CHARS, className="search-input"),
            dbc.Button("Look up", id="customer-go", color="primary", n_clicks=0),
        ], className="search-group"),
    ], className="search-bar")
    return html.Div([
        page_header("Customer", "Look up a customer by number, or by name if it is unique", search),
        html.Div(render(query), id="customer-body"),
        dcc.Location(id="customer-nav", refresh="callback-nav"),
    ])


@callback(Output("customer-nav", "href"),
          Input("customer-search", "n_submit"), Input("customer-go", "n_clicks"),
          State("customer-search", "value"), prevent_initial_call=True)
def search(_submits, _clicks, value):
    """Put the query in the URL (shareable); a unique name becomes its customer number."""
    text = "" if value is None else str(value).strip()[:MAX_QUERY_CHARS]
    if not text:
        return no_update
    result = lakehouse().lookup(text)
    return customer_href(result.user_id if result.status == "found" else text)


@safe
def render(query: str) -> object:
    lh = lakehouse()
    result: Lookup = lh.lookup(query)
    notes = notes_banner(lh.notes("customers", "daily_activity", "sessions", "churn_scores"))
    if result.status == "empty":
        return html.Div([notes, _start_here(lh)])
    if result.status == "unavailable":
        return html.Div([notes, empty_state("No customers yet", "The customers table has not been built.",
                                            "make build")])
    if result.status == "unknown":
        return html.Div([notes, dbc.Alert([
            html.H2(["No customer with id ", html.Q(clip_text(result.query)), "."], className="alert-title"),
            html.Div("Check the number, or search by first and last name."),
        ], color="light", className="not-found", id="customer-not-found")])
    if result.status == "ambiguous":
        return html.Div([notes, _candidates(result)])
    view = lh.customer(result.user_id)
    if view is None:  # vanished between lookup and read (a rebuild): say so calmly
        return dbc.Alert("This customer's data is being refreshed; try again in a moment.", color="warning")
    runs = lh.model_runs()
    return html.Div([notes, _customer(view, risk_cutoffs(runs.latest if runs else None))])


def _start_here(lh) -> html.Div:
    at_risk = lh.at_risk()
    items = []
    if at_risk is not None and len(at_risk):
        for row in at_risk.head(6).itertuples():
            items.append(dbc.ListGroupItem(
                html.Div([html.Span(f"{row.name or 'Customer'} · #{row.user_id}", className="fw-semibold"),
                          html.Span(fmt_pct(row.churn_probability), className="ms-auto fw-semibold",
                                    style={"color": BAND_COLORS.get(row.risk_band, UNSCORED_COLOR)})],
                         className="d-flex"),
                href=customer_href(row.user_id), action=True))
    return dbc.Row([
        dbc.Col(empty_state("Look up a customer",
                            "Type the customer number the caller gives you and press Enter. A full "
                            "name works too when only one customer has it."), lg=6, className="mb-3"),
        dbc.Col(section("Highest risk right now", dbc.ListGroup(items, flush=True) if items else
                        html.P("No churn scores yet: run `make train`.", className="text-muted")),
                lg=6, className="mb-3"),
    ])


def _candidates(result: Lookup) -> dbc.Card:
    rows = result.candidates
    items = [dbc.ListGroupItem(
        html.Div([html.Span(f"{r.name} · #{r.user_id}", className="fw-semibold"),
                  html.Span(f"{r.location or ''}", className="text-muted ms-3"),
                  html.Span(fmt_pct(getattr(r, "churn_probability", None)), className="ms-auto")],
                 className="d-flex"), href=customer_href(r.user_id), action=True)
        for r in rows.itertuples()]
    return section(f"{len(rows)} customers match “{clip_text(result.query)}”",
                   dbc.ListGroup(items, flush=True), "Pick one, or search by customer number.")


def _customer(view: CustomerView, cutoffs: dict[str, float]) -> html.Div:
    p = view.profile
    return html.Div([
        dbc.Row([
            dbc.Col(_risk_card(view), lg=4, className="mb-3"),
            dbc.Col(_profile_card(p), lg=4, className="mb-3"),
            dbc.Col(section("Activity against the median customer",
                            chart(figures.activity_vs_median(view.activity)),
                            "Against the median of the customers scored on the same date; red is worse than typical"),
                    lg=4, className="mb-3"),
        ], className="g-3"),
        dbc.Row([
            dbc.Col(section("Daily songs", chart(figures.songs_timeline(view.daily, view.level_changes,
                                                                        p.get("churned_at"))),
                            "Bars coloured by level; triangles mark upgrades and downgrades"),
                    lg=8, className="mb-3"),
            dbc.Col(section("Churn probability over time",
                            chart(figures.score_history(view.score_history, cutoffs)),
                            "One point per scoring date"), lg=4, className="mb-3"),
        ], className="g-3"),
        section("Last sessions", _sessions_grid(view.sessions), "Most recent first"),
    ], id="customer-view")


def _risk_card(view: CustomerView) -> dbc.Card:
    p, score = view.profile, view.score
    churned = bool(p.get("is_churned"))
    if score is None:
        body = [html.Div("Churn risk", className="kpi-label"),
                html.Div("Not scored", className="risk-number text-muted"),
                html.P("Cancelled on " + fmt_date(p.get("churned_at")) + "." if churned else
                       "This customer was not active at the latest scoring date, or no model has run yet "
                       "(`make train`).", className="text-muted mb-0")]
        return dbc.Card(dbc.CardBody(body), className="risk-card h-100")
    band = score.get("risk_band")
    color = BAND_COLORS.get(band, UNSCORED_COLOR)
    reasons = score.get("reasons") or []
    caveats = []
    if churned:
        caveats.append(f"Cancelled on {fmt_date(p.get('churned_at'))}; this is the last score before that.")
    elif not score.get("is_current_score"):
        caveats.append("Not scored at the latest date; this is the most recent score.")
    if score.get("in_sample"):
        caveats.append("In-sample: the model trained on this date, so this number is optimistic.")
    return dbc.Card(dbc.CardBody([
        html.Div([html.Span(f"Churn risk · #{p.get('user_id')}", className="kpi-label"),
                  risk_badge(band)], className="d-flex justify-content-between align-items-center"),
        html.Div(fmt_pct(score.get("churn_probability")), className="risk-number", style={"color": color},
                 id="customer-probability"),
        html.Div(f"chance of cancelling in the next 14 days, as of {fmt_date(score.get('scored_as_of_date'))}",
                 className="risk-caption"),
        html.Div("Why", className="kpi-label mt-3"),
        html.Ol([html.Li(r) for r in reasons], className="reasons") if reasons else
        html.P("No single behaviour stands out.", className="text-muted"),
        *[html.Div(c, className="risk-caveat") for c in caveats],
        html.Div(f"Model run {p.get('model_run_id') or '–'}", className="risk-meta"),
    ]), className="risk-card h-100", style={"borderTopColor": color})


def _profile_card(p: dict) -> dbc.Card:
    status = (html.Span(f"Cancelled {fmt_date(p.get('churned_at'))}", className="status-churned")
              if p.get("is_churned") else html.Span("Active", className="status-active"))
    gender = {"F": "Female", "M": "Male"}.get(p.get("gender"), p.get("gender") or "–")
    rows = [
        ("Customer number", p.get("user_id")),
        ("Gender", gender),
        ("Location", p.get("location") or "–"),
        ("Level", level_badge(p.get("current_level"))),
        ("Upgrades / downgrades", f"{fmt_int(p.get('upgrades'))} / {fmt_int(p.get('downgrades'))}"),
        ("Registered", fmt_date(p.get("registered_at"))),
        ("Tenure", f"{fmt_int(p.get('tenure_days'))} days"),
        ("Last activity", fmt_date(p.get("last_event_at"), with_time=True)),
        ("Device", " · ".join(str(x) for x in (p.get("browser"), p.get("operating_system"), p.get("device")) if x)
         or "–"),
        ("Lifetime", f"{fmt_int(p.get('songs'))} songs in {fmt_int(p.get('sessions'))} sessions, "
                     f"{fmt_num(p.get('listen_hours'), 0)} h"),
    ]
    return dbc.Card(dbc.CardBody([
        html.Div([html.H2(p.get("name") or f"Customer {p.get('user_id')}", className="customer-name",
                          id="customer-name"), status],
                 className="d-flex justify-content-between align-items-start"),
        html.Dl([item for label, value in rows for item in (html.Dt(label), html.Dd(value))],
                className="profile-list"),
    ]), className="profile-card h-100")


SESSION_FIELDS = ("songs", "distinct_artists", "thumbs_up_events", "thumbs_down_events", "advert_events",
                  "error_events", "level_at_start")
SESSION_COLUMNS = [
    {"field": "started", "headerName": "Started", "minWidth": 170},
    {"field": "minutes", "headerName": "Minutes", "type": "numericColumn"},
    {"field": "songs", "headerName": "Songs", "type": "numericColumn"},
    {"field": "distinct_artists", "headerName": "Artists", "type": "numericColumn"},
    {"field": "thumbs_up_events", "headerName": "Thumbs up", "type": "numericColumn"},
    {"field": "thumbs_down_events", "headerName": "Thumbs down", "type": "numericColumn"},
    {"field": "advert_events", "headerName": "Adverts", "type": "numericColumn"},
    {"field": "error_events", "headerName": "Errors", "type": "numericColumn"},
    {"field": "level_at_start", "headerName": "Level"},
]


def _sessions_grid(sessions: pd.DataFrame) -> object:
    if sessions is None or sessions.empty:
        return html.P("No sessions recorded.", className="text-muted")
    started = pd.to_datetime(sessions["started_at"]).dt.strftime("%a %d %b, %H:%M").tolist()
    minutes = (pd.to_numeric(sessions.get("duration_seconds"), errors="coerce") / 60).round(0).tolist()
    columns = {c: sessions[c].tolist() for c in SESSION_FIELDS if c in sessions.columns}
    records = [{"started": started[i], "minutes": None if minutes[i] != minutes[i] else minutes[i],
                **{c: values[i] for c, values in columns.items()}} for i in range(len(started))]
    return dag.AgGrid(
        id="customer-sessions", rowData=records, columnDefs=SESSION_COLUMNS,
        defaultColDef={"sortable": True, "resizable": True, "flex": 1, "minWidth": 80},
        dashGridOptions={"domLayout": "autoHeight", "suppressCellFocus": True, "theme": GRID_THEME},
        columnSize="responsiveSizeToFit", style={"height": None})
