"""Serve the dashboard: `python -m dashboard` (what `make dashboard` runs).

Host and port come from SPARKIFY_DASH_HOST (default 127.0.0.1) and SPARKIFY_DASH_PORT (default
8050); tables from SPARKIFY_HOME. Production mode: debug off, served by waitress. Basic auth is on
when SPARKIFY_DASH_USERS lists users and password hashes (see dashboard/auth.py). Without it, the
dashboard serves only on a loopback address unless `--allow-open` (SPARKIFY_DASH_ALLOW_OPEN=1) says
otherwise, and then it warns.
"""

from __future__ import annotations

import argparse
import getpass
import ipaddress
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
    parser.add_argument("--allow-open", action="store_true",
                        default=os.environ.get("SPARKIFY_DASH_ALLOW_OPEN", "") not in ("", "0"),
                        help="serve without SPARKIFY_DASH_USERS on a non-loopback address (SPARKIFY_DASH_ALLOW_OPEN=1)")
    parser.add_argument("--hash-password", action="store_true",
                        help="read a password (prompt or stdin) and print a hash for SPARKIFY_DASH_USERS")
    return parser


def hash_password() -> None:
    from werkzeug.security import generate_password_hash

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if not password:
        raise SystemExit("empty password")
    print(generate_password_hash(password))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_exposure(host: str, has_users: bool, allow_open: bool) -> str | None:
    """Refuse an open dashboard on a non-loopback address unless allowed; returns the warning to log."""
    if has_users or is_loopback(host):
        return None
    if not allow_open:
        raise SystemExit(
            f"refusing to serve the dashboard on {host} without sign-in: set SPARKIFY_DASH_USERS "
            "(`python -m dashboard --hash-password` makes a hash), serve on 127.0.0.1, or pass "
            "--allow-open (SPARKIFY_DASH_ALLOW_OPEN=1) if the network in front of it does the auth")
    return f"serving on {host} WITHOUT sign-in (--allow-open): anyone who reaches it sees every customer"


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if args.hash_password:
        hash_password()
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)

    from dashboard.app import create_app
    from dashboard.data import Lakehouse

    from dashboard.auth import ENV_VAR, AuthConfigError, parse_users

    try:
        users = parse_users(os.environ.get(ENV_VAR))
    except AuthConfigError as exc:
        raise SystemExit(str(exc)) from None
    warning = check_exposure(args.host, bool(users), args.allow_open)
    if warning:
        log.warning(warning)
    lakehouse = Lakehouse(args.home)
    app = create_app(lakehouse, users=users)
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
