"""The demo generator writes eventsim-format logs that look like eventsim's own output.

Realism is checked against the suite's eventsim sample (tests/fixtures: a third of es_small's users,
a real eventsim run over the same window); its figures are computed here from the file, never
copied from a README.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path
from statistics import mean, median

import pytest

from sparkify._generate_sim import Behaviour
from sparkify.generate import GenerateConfig, build_parser, generate, main

from conftest import SAMPLE

START, END = dt.date(2018, 10, 1), dt.date(2018, 12, 3)  # the sample's window
CONFIG = GenerateConfig(users=250, start=START, end=END, seed=42)

ANONYMOUS_KEYS = [
    "ts", "userId", "sessionId", "page", "auth", "method", "status", "level", "itemInSession",
]
USER_KEYS = ANONYMOUS_KEYS + [
    "location", "userAgent", "lastName", "firstName", "registration", "gender",
]
SONG_KEYS = USER_KEYS + ["artist", "song", "length"]

ALL_PAGES = {
    "NextSong", "Home", "Thumbs Up", "Add to Playlist", "Roll Advert", "Add Friend", "Logout", "Login",
    "Thumbs Down", "Downgrade", "Help", "Settings", "About", "Upgrade", "Save Settings", "Error",
    "Submit Upgrade", "Submit Downgrade", "Cancel", "Cancellation Confirmation", "Register",
    "Submit Registration",
}


def read_events(path: Path) -> list[dict]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def figures(events: list[dict]) -> dict:
    """The realism figures the generator is held to, computed the same way for both files."""
    pages = Counter(e["page"] for e in events)
    per_user = Counter(e["userId"] for e in events if e["userId"] != "")
    churned = {e["userId"] for e in events if e["page"] == "Cancellation Confirmation"}
    return {
        "page_share": {page: n / len(events) for page, n in pages.items()},
        "churn_share": len(churned) / len(per_user),
        "median_events_per_user": median(per_user.values()),
    }


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("generate") / "nested" / "events.json.gz"
    generate(CONFIG, out)
    return out


@pytest.fixture(scope="module")
def events(generated: Path) -> list[dict]:
    return read_events(generated)


@pytest.fixture(scope="module")
def eventsim() -> dict:
    return figures(read_events(SAMPLE))


def by_user(events: list[dict]) -> dict[str, list[dict]]:
    users: dict[str, list[dict]] = defaultdict(list)
    for e in events:
        if e["userId"] != "":
            users[e["userId"]].append(e)
    return users


# --- realism against eventsim -------------------------------------------------------------------


def test_page_shares_match_eventsim_within_three_points(events: list[dict], eventsim: dict) -> None:
    ours = figures(events)["page_share"]
    common = {page: share for page, share in eventsim["page_share"].items() if share > 0.01}
    assert "NextSong" in common and len(common) >= 5
    off = {
        page: (round(100 * ours.get(page, 0.0), 2), round(100 * ref, 2))
        for page, ref in common.items()
        if abs(ours.get(page, 0.0) - ref) > 0.03
    }
    assert not off, f"page shares (ours %, eventsim %) off by more than 3 points: {off}"


def test_churned_users_are_15_to_25_percent(events: list[dict], eventsim: dict) -> None:
    share = figures(events)["churn_share"]
    assert 0.15 <= share <= 0.25, f"churned share {share:.1%} (eventsim: {eventsim['churn_share']:.1%})"


def test_median_events_per_user_within_30_percent_of_eventsim(
    events: list[dict], eventsim: dict
) -> None:
    ours, ref = figures(events)["median_events_per_user"], eventsim["median_events_per_user"]
    assert abs(ours - ref) <= 0.3 * ref, f"median events per user {ours} vs eventsim {ref}"


def test_logged_out_and_guest_events_are_about_three_percent(events: list[dict]) -> None:
    anonymous = sum(e["userId"] == "" for e in events) / len(events)
    assert 0.015 <= anonymous <= 0.05


def test_every_page_occurs(events: list[dict]) -> None:
    assert {e["page"] for e in events} == ALL_PAGES


def test_newcomers_arrive_as_guests_and_register(tmp_path: Path) -> None:
    out = tmp_path / "events.json"
    only_newcomers = Behaviour(newcomer_share=1.0)
    config = GenerateConfig(
        users=30, start=START, end=dt.date(2018, 10, 15), seed=9, behaviour=only_newcomers
    )
    generate(config, out)
    events = read_events(out)
    sessions: dict[int, list[dict]] = defaultdict(list)
    for e in events:
        sessions[e["sessionId"]].append(e)
    signups = [s for s in sessions.values() if s[0]["auth"] == "Guest"]
    registered = 0
    for session in signups:
        pages = [e["page"] for e in session]
        assert session[0]["userId"] == "" and "Register" in pages
        if "Submit Registration" in pages:
            submit = pages.index("Submit Registration")
            first_login = session[submit + 1]
            assert first_login["auth"] == "Logged In" and first_login["level"] == "free"
            assert first_login["registration"] == session[submit]["ts"]
            registered += 1
    assert 0 < registered < len(signups)  # some guests leave without signing up


# --- format --------------------------------------------------------------------------------------


def test_lines_are_compact_json_with_eventsim_key_order(generated: Path) -> None:
    with gzip.open(generated, "rt", encoding="utf-8") as f:
        lines = [next(f) for _ in range(2_000)]
    for line in lines:
        # Jackson's layout: no spaces, "/" not escaped, non-ASCII kept as is.
        assert json.dumps(json.loads(line), separators=(",", ":"), ensure_ascii=False) + "\n" == line
        assert line.startswith('{"ts":')


def test_three_kinds_of_lines_have_their_key_sets(events: list[dict]) -> None:
    seen = Counter()
    for e in events:
        keys = list(e)
        if e["auth"] in ("Logged Out", "Guest"):
            assert keys == ANONYMOUS_KEYS and e["userId"] == ""
            seen["anonymous"] += 1
        elif e["page"] == "NextSong":
            assert keys == SONG_KEYS and e["auth"] == "Logged In"
            seen["song"] += 1
        else:
            assert keys == USER_KEYS and e["auth"] in ("Logged In", "Cancelled")
            seen["user"] += 1
    assert min(seen.values()) > 0 and len(seen) == 3


def test_values_have_eventsim_types_and_domains(events: list[dict]) -> None:
    for e in events:
        assert isinstance(e["ts"], int) and e["ts"] % 1000 == 0
        assert isinstance(e["userId"], str)
        assert isinstance(e["sessionId"], int) and isinstance(e["itemInSession"], int)
        assert isinstance(e["status"], int) and e["status"] in (200, 307, 404)
        assert e["method"] in ("GET", "PUT")
        assert e["level"] in ("free", "paid")
        assert e["auth"] in ("Logged In", "Logged Out", "Guest", "Cancelled")
        assert e["page"] in ALL_PAGES
        assert (e["status"] == 404) == (e["page"] == "Error")
        assert (e["auth"] == "Cancelled") == (e["page"] == "Cancellation Confirmation")
        if e["userId"]:
            assert isinstance(e["registration"], int) and e["registration"] % 1000 == 0
            assert e["gender"] in ("M", "F")
            city, _, states = e["location"].rpartition(", ")
            assert city and states.replace("-", "").isalpha() and states.isupper()
        if e["page"] == "NextSong":
            assert isinstance(e["length"], float) and 30 <= e["length"] <= 1500
            assert e["artist"] and e["song"]
    lengths = sorted(e["length"] for e in events if e["page"] == "NextSong")
    assert 200 <= lengths[len(lengths) // 2] <= 270  # lognormal catalogue, median ~235 s


def test_user_agents_and_locations_vary_like_real_data(events: list[dict]) -> None:
    users = {e["userId"]: e for e in events if e["userId"]}
    agents = {e["userAgent"] for e in users.values()}
    assert len(agents) >= 20 and len({e["location"] for e in users.values()}) >= 40
    assert any(a.startswith('"') and a.endswith('"') for a in agents)  # quoted, as eventsim writes them
    assert any(not a.startswith('"') for a in agents)


def test_events_are_sorted_by_ts_and_inside_the_window(events: list[dict]) -> None:
    ts = [e["ts"] for e in events]
    assert ts == sorted(ts)
    assert ts[0] >= CONFIG.start_s * 1000 and ts[-1] < CONFIG.end_s * 1000


def test_item_in_session_counts_up_within_each_session(events: list[dict]) -> None:
    items: dict[int, list[int]] = defaultdict(list)
    for e in events:
        items[e["sessionId"]].append(e["itemInSession"])
    for session_items in items.values():
        assert session_items == list(range(session_items[0], session_items[0] + len(session_items)))


# --- behaviour -----------------------------------------------------------------------------------


def test_no_event_after_cancellation_confirmation(events: list[dict]) -> None:
    for user, history in by_user(events).items():
        pages = [e["page"] for e in history]
        if "Cancellation Confirmation" in pages:
            assert pages[-1] == "Cancellation Confirmation", f"user {user} active after cancelling"
            assert pages[-2] == "Cancel"
            assert pages.count("Cancellation Confirmation") == 1


def test_level_changes_only_through_submit_upgrade_or_downgrade(events: list[dict]) -> None:
    flips = Counter()
    for user, history in by_user(events).items():
        for before, after in zip(history, history[1:]):
            if before["page"] == "Submit Upgrade":
                assert (before["level"], after["level"]) == ("free", "paid"), user
                flips["up"] += 1
            elif before["page"] == "Submit Downgrade":
                assert (before["level"], after["level"]) == ("paid", "free"), user
                flips["down"] += 1
            else:
                assert before["level"] == after["level"], (user, before["page"])
    assert flips["up"] > 0 and flips["down"] > 0


def test_free_users_see_adverts_and_paid_users_rarely(events: list[dict]) -> None:
    songs = Counter(e["level"] for e in events if e["page"] == "NextSong")
    adverts = Counter(e["level"] for e in events if e["page"] == "Roll Advert")
    assert adverts["free"] / songs["free"] > 10 * adverts["paid"] / songs["paid"]


def test_churners_show_warning_signs_a_model_can_learn(events: list[dict]) -> None:
    def rates(history: list[dict]) -> tuple[float, float]:
        pages = Counter(e["page"] for e in history)
        songs = max(pages["NextSong"], 1)
        return pages["Thumbs Down"] / songs, pages["Roll Advert"] / songs

    churned, stayed = [], []
    for history in by_user(events).values():
        cancelled = history[-1]["page"] == "Cancellation Confirmation"
        (churned if cancelled else stayed).append(rates(history))
    assert mean(td for td, _ in churned) > 1.2 * mean(td for td, _ in stayed)
    assert mean(ad for _, ad in churned) > 1.2 * mean(ad for _, ad in stayed)


# --- determinism and CLI -------------------------------------------------------------------------


def test_same_seed_gives_identical_bytes(generated: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.json.gz"
    generate(CONFIG, again)
    assert again.read_bytes() == generated.read_bytes()


def test_other_seed_gives_other_events(tmp_path: Path) -> None:
    for seed, name in ((1, "a.json"), (2, "b.json")):
        config = GenerateConfig(users=20, start=START, end=dt.date(2018, 10, 8), seed=seed)
        generate(config, tmp_path / name)
    assert (tmp_path / "a.json").read_bytes() != (tmp_path / "b.json").read_bytes()


def test_plain_output_equals_gzip_content_and_chunking_does_not_matter(tmp_path: Path) -> None:
    config = GenerateConfig(users=40, start=START, end=dt.date(2018, 10, 15), seed=5)
    generate(config, tmp_path / "a.json.gz")
    generate(GenerateConfig(**{**config.__dict__, "chunk_users": 7}), tmp_path / "b.json")
    assert gzip.decompress((tmp_path / "a.json.gz").read_bytes()) == (tmp_path / "b.json").read_bytes()


def test_help_explains_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for action in build_parser()._actions:
        assert action.help, f"{action.option_strings} has no help"
    for option in ("--users", "--start", "--end", "--seed", "--out"):
        assert option in text


def test_cli_writes_file_and_rejects_empty_window(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "events.json"
    common = ["--users", "5", "--out", str(out), "--quiet"]
    assert main([*common, "--start", "2018-10-01", "--end", "2018-10-03"]) == 0
    assert out.exists() and not out.with_name("events.json.partial").exists()
    assert main([*common, "--start", "2018-10-03", "--end", "2018-10-03"]) == 2
