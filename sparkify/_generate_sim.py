"""User and session simulation behind `python -m sparkify.generate`.

A small state model in the spirit of eventsim: each user has a session rate, a typical session
length, a level and a hidden *mood*. Mood drifts from session to session, adverts and bad songs
(thumbs down) push it down, and it drives how often the user comes back, how often they give a
thumbs down, whether they upgrade or downgrade and, above all, how likely they are to cancel. A
churn model therefore finds real but noisy signal in thumbs down, adverts and falling activity.

Events are produced as numpy records (one array per user) so that the writer can sort and format
millions of them quickly; nothing here does I/O.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from itertools import accumulate

import numpy as np

from sparkify import _generate_lists as lists
from sparkify._generate_pages import FREE, GUEST, LOGGED_OUT, PAID, code

# One event. `mk` is kind code * 2 + level; `user` is the user's index, or -1 for anonymous
# (Logged Out / Guest) events, which the writer prints with userId "" and no user details;
# `song` indexes the catalogue, -1 for pages that are not NextSong.
RECORD = np.dtype(
    [
        ("ts", "<i8"),
        ("user", "<i4"),
        ("session", "<i4"),
        ("mk", "<i2"),
        ("item", "<i4"),
        ("song", "<i4"),
    ]
)

DAY_S = 86_400
CATALOGUE_SEED = 20181001  # the catalogue is the same for every --seed, so runs share songs

NEXT_SONG = code("NextSong")
HOME = code("Home")
THUMBS_UP = code("Thumbs Up")
THUMBS_DOWN = code("Thumbs Down")
ADD_TO_PLAYLIST = code("Add to Playlist")
ROLL_ADVERT = code("Roll Advert")
ADD_FRIEND = code("Add Friend")
LOGOUT = code("Logout")
DOWNGRADE = code("Downgrade")
UPGRADE = code("Upgrade")
HELP = code("Help")
SETTINGS = code("Settings")
SAVE_SETTINGS = code("Save Settings")
ABOUT = code("About")
ERROR = code("Error")
SUBMIT_UPGRADE = code("Submit Upgrade")
SUBMIT_DOWNGRADE = code("Submit Downgrade")
CANCEL = code("Cancel")
CONFIRMATION = code("Cancellation Confirmation", "Cancelled")
HOME_OUT = code("Home", LOGGED_OUT)
ABOUT_OUT = code("About", LOGGED_OUT)
HELP_OUT = code("Help", LOGGED_OUT)
LOGIN = code("Login", LOGGED_OUT)
HOME_GUEST = code("Home", GUEST)
ABOUT_GUEST = code("About", GUEST)
HELP_GUEST = code("Help", GUEST)
REGISTER = code("Register", GUEST)
SUBMIT_REGISTRATION = code("Submit Registration", GUEST)

# After each song a user may react to it (thumbs up, thumbs down, add to playlist or nothing) and
# may navigate somewhere, sometimes with a follow-up page. A song slot is one row
# [NextSong, reaction, navigation pages...] padded with -1; all combinations are tabulated once so
# that a whole session is drawn with one categorical draw per song.
_REACTIONS = ((THUMBS_UP,), (THUMBS_DOWN,), (ADD_TO_PLAYLIST,), ())
_LOGOUT_BROWSE = ((ABOUT_OUT, 0.25 * 0.65), (HELP_OUT, 0.25 * 0.35), (None, 0.75))
_LOGOUT_SECOND_HOME = 0.35


def _navigations(change: int, submit: int) -> tuple[tuple[int, ...], ...]:
    """Navigation page sequences, in the order `_slot_p` gives their probabilities."""
    logouts = tuple(
        (LOGOUT, HOME_OUT, *((browse,) if browse else ()), *((HOME_OUT,) if again else ()), LOGIN, HOME)
        for browse, _ in _LOGOUT_BROWSE
        for again in (True, False)
    )
    return (
        (ROLL_ADVERT,),
        (ADD_FRIEND,),
        (ADD_FRIEND, ADD_FRIEND),
        (HOME,),
        (HELP,),
        (SETTINGS,),
        (SETTINGS, SAVE_SETTINGS),
        (ABOUT,),
        (ERROR,),
        (change,),
        (change, submit),
        *logouts,
        (),
    )


_SLOT_WIDTH = 8


def _slot_table(change: int, submit: int) -> np.ndarray:
    """Every (reaction, navigation) combination as a padded row; row = reaction * _N_NAV + nav."""
    rows = []
    for reaction in _REACTIONS:
        for nav in _navigations(change, submit):
            row = (NEXT_SONG, *(reaction or (-1,)), *nav)
            rows.append(row + (-1,) * (_SLOT_WIDTH - len(row)))
    return np.array(rows, dtype=np.int16)


_SLOTS = (_slot_table(UPGRADE, SUBMIT_UPGRADE), _slot_table(DOWNGRADE, SUBMIT_DOWNGRADE))  # by level
_N_NAV = len(_navigations(UPGRADE, SUBMIT_UPGRADE))
_SUBMIT_NAV = 10  # index of (change, submit) in `_navigations`
_ADVERT_NAV = 0
_ERROR_NAV = 8
_THUMBS_DOWN_REACTION = 1
assert _navigations(UPGRADE, SUBMIT_UPGRADE)[_SUBMIT_NAV] == (UPGRADE, SUBMIT_UPGRADE)
assert _navigations(UPGRADE, SUBMIT_UPGRADE)[_ADVERT_NAV] == (ROLL_ADVERT,)
assert _navigations(UPGRADE, SUBMIT_UPGRADE)[_ERROR_NAV] == (ERROR,)
assert _REACTIONS[_THUMBS_DOWN_REACTION] == (THUMBS_DOWN,)


@dataclass(frozen=True)
class Behaviour:
    """Tunable knobs of the user model; the defaults reproduce eventsim's page mix and churn rate.

    Page rates are per song and come from eventsim's own output (es_small), so the generated page
    shares land close to the real ones.
    """

    sessions_per_day: float = 0.27  # median user
    sessions_sigma: float = 0.85  # lognormal spread between light and heavy users
    songs_per_session: float = 58.0  # median user
    songs_sigma: float = 0.45
    paid_share: float = 0.2  # level of users at the start of the window
    newcomer_share: float = 0.04  # users who first arrive as guests during the window
    register_prob: float = 0.65  # guests who complete Submit Registration
    registration_age_days: float = 70.0  # mean age of existing accounts at the window start
    session_gap_s: int = 1_800  # minimum quiet time between two sessions of a user
    click_gap_s: float = 12.0  # mean seconds between clicks inside a session
    home_opener: float = 0.48  # sessions that start on Home rather than straight with a song
    thumbs_up: float = 0.054
    thumbs_down: float = 0.0105
    add_to_playlist: float = 0.028
    advert_free: float = 0.08
    advert_paid: float = 0.0016
    add_friend: float = 0.0175
    home: float = 0.023
    help: float = 0.0065
    settings: float = 0.0072
    about: float = 0.0023
    error: float = 0.0011
    upgrade: float = 0.0124
    downgrade: float = 0.0108
    logout: float = 0.0143
    save_settings: float = 0.21  # of Settings visits
    second_friend: float = 0.07  # Add Friend twice in a row
    submit_upgrade: float = 0.25  # of Upgrade visits
    submit_downgrade: float = 0.04  # of Downgrade visits
    mood_sigma: float = 0.6  # spread of users' baseline mood
    mood_reversion: float = 0.12  # pull back to the baseline per session
    mood_noise: float = 0.2  # random drift per session
    advert_hurt: float = 2.5  # mood lost per advert-per-song in a session
    thumbs_down_hurt: float = 9.0  # mood lost per thumbs-down-per-song in a session
    error_hurt: float = 0.15  # mood lost per error page
    mood_activity: float = 0.6  # how strongly mood scales the session rate
    mood_thumbs_down: float = 0.6  # how strongly bad mood raises the thumbs-down rate
    cancel_bias: float = -7.15  # log of the daily cancel hazard at mood 0
    cancel_mood: float = 1.4  # how strongly bad mood raises it


@dataclass(frozen=True)
class Catalogue:
    """Made-up songs with Zipf-like popularity, so that a few hits dominate as in real logs."""

    artists: tuple[str, ...]
    titles: tuple[str, ...]
    lengths: np.ndarray  # seconds, 5 decimals, lognormal with median ~235 s
    durations: np.ndarray  # whole seconds the song occupies on the timeline
    cdf: np.ndarray  # popularity, cumulative

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Draw `n` track indices by popularity."""
        return np.searchsorted(self.cdf, rng.random(n), side="right")


def build_catalogue(
    n_tracks: int = 60_000, n_artists: int = 18_000, seed: int = CATALOGUE_SEED
) -> Catalogue:
    """A deterministic catalogue; popularity (rank + 15)^-0.95 like the one eventsim ran with."""
    rng = np.random.default_rng(seed)
    artists = _artist_names(rng, n_artists)
    artist_weight = (np.arange(n_artists) + 40.0) ** -0.95
    artist_of = np.searchsorted(_cdf(artist_weight), rng.random(n_tracks), side="right")
    lengths = np.round(np.clip(rng.lognormal(math.log(235.0), 0.35, n_tracks), 30.0, 1500.0), 5)
    return Catalogue(
        artists=tuple(artists[i] for i in artist_of.tolist()),
        titles=_song_titles(rng, n_tracks),
        lengths=lengths,
        durations=np.ceil(lengths).astype(np.int64),
        cdf=_cdf((np.arange(n_tracks) + 15.0) ** -0.95),
    )


def _cdf(weights: np.ndarray) -> np.ndarray:
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def _pick(rng: np.random.Generator, words: tuple[str, ...], n: int) -> list[str]:
    return [words[i] for i in rng.integers(len(words), size=n).tolist()]


def _artist_names(rng: np.random.Generator, n: int) -> list[str]:
    first = _pick(rng, lists.FIRST_NAMES_F + lists.FIRST_NAMES_M, n)
    last = _pick(rng, lists.LAST_NAMES, n)
    adj = _pick(rng, lists.ADJECTIVES, n)
    noun = _pick(rng, lists.NOUNS, n)
    style = rng.random(n).tolist()
    names = []
    for i, x in enumerate(style):
        if x < 0.45:
            names.append(f"{first[i]} {last[i]}")
        elif x < 0.80:
            names.append(f"The {adj[i]} {noun[i]}")
        elif x < 0.95:
            names.append(f"{adj[i]} {noun[i][:-1]}")
        else:
            names.append(f"{first[i]} {last[i]} & The {noun[i]}")
    return names


def _song_titles(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    adj = _pick(rng, lists.ADJECTIVES, n)
    noun = _pick(rng, lists.TITLE_NOUNS, n)
    noun2 = _pick(rng, lists.TITLE_NOUNS, n)
    plural = _pick(rng, lists.NOUNS, n)
    verb = _pick(rng, lists.TITLE_VERBS, n)
    prep = _pick(rng, lists.TITLE_PREPOSITIONS, n)
    style = rng.integers(6, size=n).tolist()
    patterns = (
        lambda i: f"{adj[i]} {noun[i]}",
        lambda i: f"{noun[i]} {prep[i]} {noun2[i]}",
        lambda i: f"{verb[i]} Your {noun[i]}",
        lambda i: f"The {noun[i]} Of {noun2[i]}",
        lambda i: f"{adj[i]} {plural[i]}",
        lambda i: f"Everybody {verb[i]} Your {noun[i]}",
    )
    return tuple(patterns[s](i) for i, s in enumerate(style))


class Clock:
    """Turns "so many days of activity" into wall time, following a daily and weekly rhythm.

    Sessions start more often in the (UTC) afternoon and evening and less at weekends, as in
    eventsim's output; drawing gaps in activity time and mapping them back keeps that exact.
    """

    def __init__(self, start_s: int, end_s: int) -> None:
        self.start_s = start_s
        self.end_s = end_s
        hours = np.arange(start_s // 3600, -(-end_s // 3600) + 1, dtype=np.int64)
        hour_of_day = hours % 24
        weekday = (hours // 24 + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        daily = 1.0 + 0.3 * np.cos(2 * np.pi * (hour_of_day - 17) / 24)  # peak at 17:00 UTC
        weight = daily * np.where(weekday >= 5, 0.7, 1.08)
        self._edges = (hours * 3600).tolist()
        self._weight = weight.tolist()
        self._cum = [0.0, *accumulate(w / 24.0 for w in self._weight)]
        self._end_cum = self._at(end_s)

    def _at(self, t: float) -> float:
        i = min(max(bisect.bisect_right(self._edges, t) - 1, 0), len(self._weight) - 1)
        return self._cum[i] + (t - self._edges[i]) / DAY_S * self._weight[i]

    def advance(self, t: float, days: float) -> float | None:
        """Wall time after `days` of activity time from `t`, or None if that is past the end."""
        target = self._at(t) + days
        if target >= self._end_cum:
            return None
        i = bisect.bisect_right(self._cum, target) - 1
        return self._edges[i] + (target - self._cum[i]) / self._weight[i] * DAY_S


@dataclass(frozen=True)
class UserProfile:
    """What the log shows about a user besides their events."""

    user_id: str
    first_name: str
    last_name: str
    gender: str
    location: str
    user_agent: str
    registration_s: int


@dataclass(frozen=True)
class UserOutcome:
    """One simulated user, ready for the writer."""

    profile: UserProfile | None  # None for a guest who never registered
    events: np.ndarray  # RECORD, in time order, only events inside the window
    churned: bool
    next_session_id: int


@dataclass
class _Listener:
    """A user's traits and the state that changes from session to session."""

    rate: float  # sessions per day at mood 0
    songs_mean: float  # songs in a typical session
    mood_base: float  # where mood returns to
    mood: float
    level: int


class _Timeline:
    """A user's events as column blocks; every block belongs to one session and has one level."""

    def __init__(self, session_id: int) -> None:
        self.session_id = session_id  # the session that `add` appends to
        self._ts: list[np.ndarray] = []
        self._kinds: list[np.ndarray] = []
        self._songs: list[np.ndarray] = []
        self._level: list[int] = []
        self._session: list[int] = []
        self._size: list[int] = []

    def add(self, ts: np.ndarray, kinds: np.ndarray, level: int, songs: np.ndarray) -> None:
        self._ts.append(ts)
        self._kinds.append(kinds)
        self._songs.append(songs)
        self._level.append(level)
        self._session.append(self.session_id)
        self._size.append(len(kinds))

    def add_pages(self, ts: list[int], kinds: list[int], level: int) -> None:
        """Append pages that are not songs."""
        no_song = np.full(len(kinds), -1, np.int64)
        self.add(np.array(ts, np.int64), np.array(kinds, np.int16), level, no_song)

    def records(self, index: int) -> np.ndarray:
        """RECORD rows for user `index`, with itemInSession counted from 0 in every session."""
        if not self._size:
            return np.empty(0, RECORD)
        kinds = np.concatenate(self._kinds).astype(np.int16)
        size = np.array(self._size)
        session = np.repeat(np.array(self._session, np.int32), size)
        first = np.flatnonzero(np.r_[True, session[1:] != session[:-1]])
        rec = np.empty(len(kinds), RECORD)
        rec["ts"] = np.concatenate(self._ts)
        rec["user"] = np.where(kinds >= HOME_OUT, -1, index)
        rec["session"] = session
        rec["mk"] = kinds * 2 + np.repeat(np.array(self._level, np.int16), size)
        rec["item"] = np.arange(len(kinds)) - np.repeat(first, np.diff(np.r_[first, len(kinds)]))
        rec["song"] = np.concatenate(self._songs)
        return rec


_LOCATION_CDF = _cdf((np.arange(len(lists.LOCATIONS)) + 6.0) ** -1.0)
_AGENT_CDF = _cdf((np.arange(len(lists.USER_AGENTS)) + 3.0) ** -0.8)


def simulate_user(
    index: int,
    seed: int,
    clock: Clock,
    catalogue: Catalogue,
    behaviour: Behaviour,
    session_id: int,
) -> UserOutcome:
    """Simulate one user over the window; the user's own RNG stream keeps runs reproducible."""
    b = behaviour
    rng = np.random.default_rng([seed, index])
    gender = "F" if rng.random() < 0.47 else "M"
    firsts = lists.FIRST_NAMES_F if gender == "F" else lists.FIRST_NAMES_M
    first = firsts[int(rng.integers(len(firsts)))]
    last = lists.LAST_NAMES[int(rng.integers(len(lists.LAST_NAMES)))]
    location = lists.LOCATIONS[int(np.searchsorted(_LOCATION_CDF, rng.random(), side="right"))]
    agent = lists.USER_AGENTS[int(np.searchsorted(_AGENT_CDF, rng.random(), side="right"))]
    rate = b.sessions_per_day * math.exp(b.sessions_sigma * rng.standard_normal())
    songs_mean = b.songs_per_session * math.exp(b.songs_sigma * rng.standard_normal())
    mood = b.mood_sigma * rng.standard_normal()
    level = PAID if rng.random() < b.paid_share else FREE
    user = _Listener(rate=rate, songs_mean=songs_mean, mood_base=mood, mood=mood, level=level)
    newcomer = rng.random() < b.newcomer_share

    timeline = _Timeline(session_id)
    churned = False
    registered = True
    if newcomer:
        user.level = FREE
        arrival = clock.start_s + rng.random() * (clock.end_s - clock.start_s)
        registered, registration, t_end = _guest_visit(rng, timeline, int(arrival), b)
        if registered:  # the new user carries on in the same session
            churned, t_end = _play(rng, catalogue, b, timeline, user, t_end, opener=True, p_cancel=0.0)
        timeline.session_id += 1
        t = float(t_end)
    else:
        age_s = rng.exponential(b.registration_age_days * DAY_S) + rng.random() * DAY_S
        registration = int(clock.start_s - age_s)
        t = float(clock.start_s)

    while registered and not churned:
        gap_days = rng.exponential() / (user.rate * math.exp(b.mood_activity * user.mood))
        start = clock.advance(t, gap_days)
        if start is None:
            break
        # The cancel hazard runs per day, not per session, so heavy users do not churn just for
        # logging in more often; the decision shows up when the user next comes back.
        hazard = math.exp(b.cancel_bias - b.cancel_mood * user.mood) * (start - t) / DAY_S
        opener = rng.random() < b.home_opener
        p_cancel = -math.expm1(-hazard)
        churned, t_end = _play(rng, catalogue, b, timeline, user, int(start), opener, p_cancel)
        timeline.session_id += 1
        t = float(t_end + b.session_gap_s)

    events = timeline.records(index)
    events = events[events["ts"] < clock.end_s]
    churned = bool(np.any(events["mk"] // 2 == CONFIRMATION))
    if not registered:
        return UserOutcome(None, events, churned, timeline.session_id)
    profile = UserProfile(str(index + 1), first, last, gender, location, agent, registration)
    return UserOutcome(profile, events, churned, timeline.session_id)


def _guest_visit(
    rng: np.random.Generator, timeline: _Timeline, t: int, b: Behaviour
) -> tuple[bool, int, int]:
    """A newcomer browses as a guest and may sign up; returns (registered, registration, end)."""
    pages = [HOME_GUEST]
    if rng.random() < 0.4:
        pages.append(ABOUT_GUEST if rng.random() < 0.6 else HELP_GUEST)
        pages.append(HOME_GUEST)
    pages.append(REGISTER)
    registered = rng.random() < b.register_prob
    if registered:
        pages.append(SUBMIT_REGISTRATION)
    times = []
    for _ in pages:
        times.append(t)
        t += 1 + int(rng.exponential(b.click_gap_s * 2))
    timeline.add_pages(times, pages, FREE)
    return registered, times[-1], t


def _play(
    rng: np.random.Generator,
    catalogue: Catalogue,
    b: Behaviour,
    timeline: _Timeline,
    user: _Listener,
    t: int,
    opener: bool,
    p_cancel: float,
) -> tuple[bool, int]:
    """Play one logged-in session, updating the user's mood and level; returns (churned, end time).

    The session is built in blocks of constant level: a Submit Upgrade/Downgrade ends a block and
    the rest of the session is played at the new level, and a cancellation ends everything.
    """
    n_slots = int(rng.geometric(1.0 / user.songs_mean))
    cancel_at = int(rng.integers(n_slots)) if rng.random() < p_cancel else -1
    done = n_songs = n_adverts = n_errors = n_thumbs_down = 0
    churned = False
    while True:
        if opener:
            timeline.add_pages([t], [HOME], user.level)
            t += 1 + int(rng.exponential(b.click_gap_s))
        rows = n_slots - done
        if rows <= 0:
            break
        slot = np.searchsorted(_slot_p(b, user.level, user.mood), rng.random(rows), side="right")
        nav = slot % _N_NAV
        submits = np.flatnonzero(nav == _SUBMIT_NAV)
        stop = int(submits[0]) if submits.size else rows - 1
        flip = bool(submits.size)
        grid = _SLOTS[user.level][slot[: stop + 1]]
        if 0 <= cancel_at - done <= stop:
            stop, flip, churned = cancel_at - done, False, True
            grid = grid[: stop + 1]
            grid[stop, 2:] = -1
            if user.level == FREE and rng.random() < 0.35:
                grid[stop, 2] = ROLL_ADVERT  # the last straw
            grid[stop, 3] = CANCEL
            grid[stop, 4] = CONFIRMATION
        n_songs += stop + 1
        n_adverts += int(np.count_nonzero(nav[: stop + 1] == _ADVERT_NAV))
        n_errors += int(np.count_nonzero(nav[: stop + 1] == _ERROR_NAV))
        n_thumbs_down += int(np.count_nonzero(slot[: stop + 1] // _N_NAV == _THUMBS_DOWN_REACTION))
        ts, kinds, songs, t_end = _lay_out(rng, catalogue, b, grid, t)
        timeline.add(ts, kinds, user.level, songs)
        if not flip:
            t = t_end
            break
        user.level = PAID if user.level == FREE else FREE
        done += stop + 1
        t = int(ts[-1]) + 1 + int(rng.exponential(b.click_gap_s))
        opener = True  # eventsim shows Home right after a level change

    n_songs = max(n_songs, 1)
    user.mood += (
        b.mood_reversion * (user.mood_base - user.mood)
        + b.mood_noise * rng.standard_normal()
        - b.advert_hurt * n_adverts / n_songs
        - b.thumbs_down_hurt * (n_thumbs_down / n_songs - b.thumbs_down)
        - b.error_hurt * n_errors
    )
    return churned, t


def _slot_p(b: Behaviour, level: int, mood: float) -> np.ndarray:
    """Cumulative probabilities of the slot rows in `_SLOTS[level]` for a user in this mood."""
    reaction = np.array(
        [
            b.thumbs_up * math.exp(0.2 * mood),
            b.thumbs_down * math.exp(-b.mood_thumbs_down * mood),
            b.add_to_playlist,
            0.0,
        ]
    )
    reaction[3] = 1.0 - reaction[:3].sum()
    if level == FREE:
        advert, change = b.advert_free, b.upgrade * math.exp(0.3 * mood)
        submit = min(0.9, b.submit_upgrade * math.exp(0.4 * mood))
    else:
        advert, change = b.advert_paid, b.downgrade * math.exp(-0.3 * mood)
        submit = min(0.9, b.submit_downgrade * math.exp(-0.6 * mood))
    logouts = [
        b.logout * p_browse * (_LOGOUT_SECOND_HOME if again else 1.0 - _LOGOUT_SECOND_HOME)
        for _, p_browse in _LOGOUT_BROWSE
        for again in (True, False)
    ]
    nav = np.array(
        [
            advert,
            b.add_friend * (1.0 - b.second_friend),
            b.add_friend * b.second_friend,
            b.home,
            b.help,
            b.settings * (1.0 - b.save_settings),
            b.settings * b.save_settings,
            b.about,
            b.error,
            change * (1.0 - submit),
            change * submit,
            *logouts,
            0.0,
        ]
    )
    nav[-1] = 1.0 - nav.sum()
    cdf = np.cumsum(np.outer(reaction, nav).ravel())
    return cdf / cdf[-1]


def _lay_out(
    rng: np.random.Generator, catalogue: Catalogue, b: Behaviour, grid: np.ndarray, t: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Timestamps for a block: each song starts when the previous one ends; clicks happen meanwhile."""
    kinds = grid[grid >= 0]
    is_song = kinds == NEXT_SONG  # every row starts with its song
    row = np.cumsum(is_song) - 1
    gaps = rng.exponential(b.click_gap_s, len(kinds)).astype(np.int64) + 1
    gaps[is_song] = 0
    clock = np.cumsum(gaps)
    offset = clock - clock[is_song][row]  # seconds since the row's song started
    row_last = np.append(np.flatnonzero(is_song)[1:], len(kinds)) - 1
    songs = catalogue.sample(rng, len(grid))
    row_time = np.maximum(catalogue.durations[songs], offset[row_last] + 1)
    starts = t + np.cumsum(row_time) - row_time
    song_of = np.full(len(kinds), -1, dtype=np.int64)
    song_of[is_song] = songs
    return starts[row] + offset, kinds, song_of, int(starts[-1] + row_time[-1])
