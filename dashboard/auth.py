"""Optional HTTP basic auth, configured from the environment.

    SPARKIFY_DASH_USERS="alice:<hash>,bob:<hash>"

Each hash is a werkzeug password hash (pbkdf2 or scrypt), made with
`python -m dashboard --hash-password`. Without the variable the dashboard is open, as is usual
on 127.0.0.1; serving open on another interface needs `--allow-open` (see dashboard/__main__.py).
The variable set but empty or malformed is an error, never an open dashboard.

A verified password is remembered (as a SHA-256 digest, in memory) so that each Dash request does not
pay for a slow hash again. An unknown user name is checked against a decoy hash of the same kind, so it
costs the same time as a wrong password. A client (by address) that fails MAX_FAILURES times within
FAILURE_WINDOW_S seconds gets 429 Too Many Requests, without a password check, until the window passes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable

from werkzeug.security import check_password_hash, generate_password_hash

log = logging.getLogger(__name__)

ENV_VAR = "SPARKIFY_DASH_USERS"
MAX_FAILURES = 5
FAILURE_WINDOW_S = 60.0


class AuthConfigError(ValueError):
    """SPARKIFY_DASH_USERS is malformed; the message says where."""


def parse_users(spec: str | None) -> dict[str, str]:
    """'alice:hash,bob:hash' -> {'alice': 'hash', ...}. Hashes contain ':' but never ','.
    None (the variable unset) is an open dashboard; set but listing no user is an error."""
    if spec is None:
        return {}
    users: dict[str, str] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, hashed = item.partition(":")
        if not sep or not name or not hashed:
            raise AuthConfigError(f"{ENV_VAR}: expected 'user:hash', got {item[:40]!r}")
        if "$" not in hashed:
            raise AuthConfigError(
                f"{ENV_VAR}: the password of {name!r} is not a werkzeug hash; "
                "make one with `python -m dashboard --hash-password`")
        users[name] = hashed
    if not users:
        raise AuthConfigError(
            f"{ENV_VAR} is set but lists no user; give 'user:hash' pairs "
            f"(`python -m dashboard --hash-password`), or unset it for an open dashboard on 127.0.0.1")
    return users


class BasicAuth:
    """WSGI middleware that asks for a user name and password before anything is served."""

    def __init__(self, app: Callable, users: dict[str, str], realm: str = "Sparkify dashboard",
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.app, self.users, self.realm, self.clock = app, users, realm, clock
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        # Checked for an unknown user name: the same method and cost as a real user's hash.
        method = next(iter(users.values())).rsplit("$", 2)[0]
        self._decoy = generate_password_hash(secrets.token_hex(16), method=method)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        client = environ.get("REMOTE_ADDR", "")
        header = environ.get("HTTP_AUTHORIZATION", "")
        retry_after = self._blocked_for(client)
        if retry_after and header:
            start_response("429 Too Many Requests", [
                ("Content-Type", "text/plain; charset=utf-8"), ("Retry-After", str(retry_after))])
            return [b"Too many failed sign-ins from this address; try again later.\n"]
        if self._authorised(header):
            return self.app(environ, start_response)
        if header:
            self._record_failure(client)
        start_response("401 Unauthorized", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'),
        ])
        return [b"Sign in to see the Sparkify dashboard.\n"]

    def _blocked_for(self, client: str) -> int:
        """Seconds until `client` may try again (0: now)."""
        now = self.clock()
        with self._lock:
            failures = self._failures.get(client)
            while failures and failures[0] <= now - FAILURE_WINDOW_S:
                failures.popleft()
            if not failures or len(failures) < MAX_FAILURES:
                return 0
            return max(1, int(failures[0] + FAILURE_WINDOW_S - now + 0.999))

    def _record_failure(self, client: str) -> None:
        with self._lock:
            self._failures[client].append(self.clock())
        log.warning("failed sign-in from %s", client or "an unknown address")

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
            check_password_hash(self._decoy, password)  # the same cost as a wrong password
            return False
        token = hashlib.sha256(f"{user}\0{password}\0{hashed}".encode()).digest()
        with self._lock:
            if any(hmac.compare_digest(token, seen) for seen in self._verified):
                return True
        if not check_password_hash(hashed, password):
            return False
        with self._lock:
            self._verified.add(token)
        return True
