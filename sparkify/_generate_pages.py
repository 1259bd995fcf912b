"""The event kinds the demo generator can emit: page, auth, HTTP method and status of each.

The simulation works with small integer codes and the writer turns a code back into JSON text, so
both sides must share this one table. Methods and statuses follow eventsim: pages that change
state are PUTs, redirects answer 307, `Error` answers 404.
"""

from __future__ import annotations

from typing import NamedTuple

LOGGED_IN = "Logged In"
LOGGED_OUT = "Logged Out"
GUEST = "Guest"
CANCELLED = "Cancelled"

LEVELS: tuple[str, str] = ("free", "paid")
FREE, PAID = 0, 1

# The 22 Sparkify pages with the method and status eventsim uses for them.
PAGE_HTTP: dict[str, tuple[str, int]] = {
    "NextSong": ("PUT", 200),
    "Home": ("GET", 200),
    "Thumbs Up": ("PUT", 307),
    "Add to Playlist": ("PUT", 200),
    "Roll Advert": ("GET", 200),
    "Add Friend": ("PUT", 307),
    "Logout": ("PUT", 307),
    "Login": ("PUT", 307),
    "Thumbs Down": ("PUT", 307),
    "Downgrade": ("GET", 200),
    "Help": ("GET", 200),
    "Settings": ("GET", 200),
    "About": ("GET", 200),
    "Upgrade": ("GET", 200),
    "Save Settings": ("PUT", 307),
    "Error": ("GET", 404),
    "Submit Upgrade": ("PUT", 307),
    "Submit Downgrade": ("PUT", 307),
    "Cancel": ("PUT", 307),
    "Cancellation Confirmation": ("GET", 200),
    "Register": ("GET", 200),
    "Submit Registration": ("PUT", 307),
}


class Kind(NamedTuple):
    """One (page, auth) combination; its index in KINDS is the code the simulation uses."""

    page: str
    auth: str

    @property
    def anonymous(self) -> bool:
        """Logged Out and Guest events carry `userId: ""` and no user details."""
        return self.auth in (LOGGED_OUT, GUEST)


KINDS: tuple[Kind, ...] = (
    Kind("NextSong", LOGGED_IN),  # 0
    Kind("Home", LOGGED_IN),
    Kind("Thumbs Up", LOGGED_IN),
    Kind("Add to Playlist", LOGGED_IN),
    Kind("Roll Advert", LOGGED_IN),
    Kind("Add Friend", LOGGED_IN),  # 5
    Kind("Logout", LOGGED_IN),
    Kind("Thumbs Down", LOGGED_IN),
    Kind("Downgrade", LOGGED_IN),
    Kind("Help", LOGGED_IN),
    Kind("Settings", LOGGED_IN),  # 10
    Kind("About", LOGGED_IN),
    Kind("Upgrade", LOGGED_IN),
    Kind("Save Settings", LOGGED_IN),
    Kind("Error", LOGGED_IN),
    Kind("Submit Upgrade", LOGGED_IN),  # 15
    Kind("Submit Downgrade", LOGGED_IN),
    Kind("Cancel", LOGGED_IN),
    Kind("Cancellation Confirmation", CANCELLED),
    Kind("Home", LOGGED_OUT),
    Kind("About", LOGGED_OUT),  # 20
    Kind("Help", LOGGED_OUT),
    Kind("Error", LOGGED_OUT),
    Kind("Login", LOGGED_OUT),
    Kind("Home", GUEST),
    Kind("About", GUEST),  # 25
    Kind("Help", GUEST),
    Kind("Error", GUEST),
    Kind("Register", GUEST),
    Kind("Submit Registration", GUEST),
)

_CODE = {kind: code for code, kind in enumerate(KINDS)}


def code(page: str, auth: str = LOGGED_IN) -> int:
    """The integer code of a (page, auth) pair; KeyError for a pair eventsim never emits."""
    return _CODE[Kind(page, auth)]


FIRST_ANONYMOUS = code("Home", LOGGED_OUT)
assert all(k.anonymous == (i >= FIRST_ANONYMOUS) for i, k in enumerate(KINDS))
assert {k.page for k in KINDS} == set(PAGE_HTTP)
