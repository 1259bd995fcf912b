"""Serve the dashboard: `python -m dashboard` (what `make dashboard` runs).

Host and port come from SPARKIFY_DASH_HOST (default 127.0.0.1) and SPARKIFY_DASH_PORT (default
8050); tables from SPARKIFY_HOME. Production mode: debug off, served by waitress. Basic auth is on
when SPARKIFY_DASH_USERS lists users and password hashes (see dashboard/auth.py).
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import threading

log = logging.getLogger("dashboard")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("SPARKIFY_DASH_HOST") or "127.0.0.1",
                        help="interface to listen on (SPARKIFY_DASH_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SPARKIFY_DASH_PORT") or 8050),
                        help="port (SPARKIFY_DASH_PORT, default 8050)")
    parser.add_argument("--home", default=None,
                        help="lakehouse to read (default: SPARKIFY_HOME, else ./lakehouse)")
    parser.add_argument("--threads", type=int, default=8, help="waitress worker threads (default 8)")
    parser.add_argument("--no-warm", action="store_true",
                        help="do not preload the tables at start-up (they load on first use)")
    parser.add_argument("--hash-password", action="store_true",
                        help="read a password (prompt or stdin) and print a hash for SPARKIFY_DASH_USERS")
    return parser


def hash_password() -> None:
    from werkzeug.security import generate_password_hash

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("empty password")
    print(generate_password_hash(password))


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.hash_password:
        hash_password()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    from dashboard.app import create_app
    from dashboard.auth import AuthConfigError
    from dashboard.data import Lakehouse

    lakehouse = Lakehouse(args.home)
    try:
        app = create_app(lakehouse)
    except AuthConfigError as exc:
        raise SystemExit(str(exc)) from None
    if not args.no_warm:
        threading.Thread(target=lakehouse.warm, name="warm", daemon=True).start()
    try:
        from dashboard.server import create_server

        server = create_server(app, args.host, args.port, args.threads)
    except ImportError:  # pragma: no cover - waitress is a declared dependency
        log.warning("waitress is not installed; using Flask's built-in server (debug off)")
        print(f"Sparkify dashboard: http://{args.host}:{args.port}/  (lakehouse {lakehouse.home})", flush=True)
        app.run(host=args.host, port=args.port, debug=False)
        return
    except OSError as exc:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    print(f"Sparkify dashboard: http://{args.host}:{server.effective_port}/  (lakehouse {lakehouse.home})",
          flush=True)
    try:
        server.run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
