"""Optional HTTP basic auth, configured from the environment.

    SPARKIFY_DASH_USERS="alice:<hash>,bob:<hash>"

Each hash is a werkzeug password hash (pbkdf2 or scrypt), made with
`python -m dashboard --hash-password`. Without the variable the dashboard is open, as is usual
on 127.0.0.1; set it before serving on another interface. A verified password is remembered (as
a SHA-256 digest, in memory) so that each Dash request does not pay for a slow hash again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import threading
from collections.abc import Callable, Iterable

from werkzeug.security import check_password_hash

log = logging.getLogger(__name__)

ENV_VAR = "SPARKIFY_DASH_USERS"


class AuthConfigError(ValueError):
    """SPARKIFY_DASH_USERS is malformed; the message says where."""


def parse_users(spec: str | None) -> dict[str, str]:
    """'alice:hash,bob:hash' -> {'alice': 'hash', ...}. Hashes contain ':' but never ','."""
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
    return users


class BasicAuth:
    """WSGI middleware that asks for a user name and password before anything is served."""

    def __init__(self, app: Callable, users: dict[str, str], realm: str = "Sparkify dashboard") -> None:
        self.app, self.users, self.realm = app, users, realm
        self._verified: set[bytes] = set()
        self._lock = threading.Lock()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if self._authorised(environ.get("HTTP_AUTHORIZATION", "")):
            return self.app(environ, start_response)
        start_response("401 Unauthorized", [
            ("Content-Type", "text/plain; charset=utf-8"),
            ("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"'),
        ])
        return [b"Sign in to see the Sparkify dashboard.\n"]

    def _authorised(self, header: str) -> bool:
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        hashed = self.users.get(user)
        if hashed is None:
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
