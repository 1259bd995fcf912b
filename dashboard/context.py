"""Where pages and callbacks find the app's lakehouse and what-if adapter: on the Flask app.

`create_app` puts them in `server.config`; callbacks run inside a request, so `current_app` is
the right app even when tests run several apps in one process.
"""

from __future__ import annotations

from flask import current_app

from dashboard.data import Lakehouse
from dashboard.whatif import WhatIfAdapter

LAKEHOUSE_KEY = "sparkify.lakehouse"
WHATIF_KEY = "sparkify.whatif"


def lakehouse() -> Lakehouse:
    return current_app.config[LAKEHOUSE_KEY]


def whatif() -> WhatIfAdapter:
    return current_app.config[WHATIF_KEY]
