"""Serve a Dash app with waitress, in the foreground (`python -m dashboard`) or in a thread (tests, bench)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

import dash


@dataclass
class RunningServer:
    url: str
    port: int
    _server: object
    _thread: threading.Thread

    def stop(self) -> None:
        self._server.close()
        self._thread.join(timeout=10)


def create_server(app: dash.Dash, host: str = "127.0.0.1", port: int = 0, threads: int = 8):
    """A waitress server for `app` (port 0: a free port, see `.effective_port`)."""
    from waitress.server import create_server as waitress_server

    return waitress_server(app.server, host=host, port=port, threads=threads, ident="sparkify-dashboard")


def serve_in_thread(app: dash.Dash, host: str = "127.0.0.1", port: int = 0, threads: int = 8) -> RunningServer:
    """Start serving in a daemon thread and return at once; `stop()` shuts it down."""
    server = create_server(app, host, port, threads)
    thread = threading.Thread(target=server.run, name="dashboard-server", daemon=True)
    thread.start()
    port = server.effective_port
    return RunningServer(f"http://{host}:{port}", port, server, thread)
