"""Build the Dash app: pages, navigation, and the services callbacks reach through Flask's config."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import context
from dashboard.auth import ENV_VAR as AUTH_ENV_VAR
from dashboard.auth import BasicAuth, parse_users
from dashboard.data import Lakehouse
from dashboard.whatif import WhatIfAdapter

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
NAV = (("Overview", "/"), ("Customer", "/customer"), ("At-risk", "/at-risk"), ("Model", "/model"),
       ("What-if", "/what-if"))


def create_app(lakehouse: Lakehouse | None = None, whatif: WhatIfAdapter | None = None,
               users: dict[str, str] | None = None) -> dash.Dash:
    """A production Dash app over `lakehouse` (default: SPARKIFY_HOME); auth from SPARKIFY_DASH_USERS."""
    lakehouse = lakehouse or Lakehouse()
    if whatif is None:
        whatif = WhatIfAdapter(home=str(lakehouse.home), model_path=lambda: _selected_model_path(lakehouse),
                               warmup_features=lakehouse.typical_features)
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="Sparkify · Customer churn",
        update_title=None,
        suppress_callback_exceptions=True,
        serve_locally=True,
        meta_tags=[{"name": "viewport", "content": "width=device-width, initial-scale=1"}],
    )
    app.server.config[context.LAKEHOUSE_KEY] = lakehouse
    app.server.config[context.WHATIF_KEY] = whatif
    app.layout = shell
    users = parse_users(os.environ.get(AUTH_ENV_VAR)) if users is None else users
    if users:
        app.server.wsgi_app = BasicAuth(app.server.wsgi_app, users)
        log.info("basic auth on for %d user(s)", len(users))

    @app.server.errorhandler(500)
    def _calm_500(_error):  # never a traceback in the browser
        return "Something went wrong on our side; please try again in a moment.", 500

    return app


def shell() -> html.Div:
    """The frame around every page: navigation bar, page container, footer."""
    links = [dbc.NavItem(dbc.NavLink(label, href=href, active="exact", className="nav-link-main"))
             for label, href in NAV]
    navbar = dbc.Navbar(
        dbc.Container([
            dcc.Link([html.Span("●", className="brand-dot"), html.Span("Sparkify"),
                      html.Span("Customer churn", className="brand-sub")], href="/", className="brand"),
            dbc.Nav(links, navbar=True, className="ms-auto main-nav"),
        ], fluid=True, className="navbar-inner"),
        color="dark", dark=True, className="topbar")
    footer = html.Footer(
        dbc.Container("Sparkify lakehouse · probabilities are calibrated model estimates for the next "
                      "14 days, not certainties.", fluid=True), className="footer")
    return html.Div([navbar, dbc.Container(dash.page_container, fluid=True, className="page"), footer])


def _selected_model_path(lakehouse: Lakehouse) -> str | None:
    """The model of the newest time-based run (a lifetime-protocol run is for comparison only)."""
    runs = lakehouse.model_runs()
    if runs is None:
        return None
    run = runs.by_protocol.get("time") or runs.latest
    return str(run["model_path"]) if run.get("model_path") else None
