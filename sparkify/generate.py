"""Write a synthetic Sparkify event log, for `make run` without data of your own and for benchmarks.

    python -m sparkify.generate --users 250 --start 2018-10-01 --end 2018-12-03 --seed 42 \\
        --out data/events.json.gz

The lines have exactly the layout of eventsim / the Udacity Sparkify file (key order, key sets for
logged-in, song and anonymous events, whole-second epoch milliseconds), so the pipeline reads them
exactly as it reads real data. The user model lives in `_generate_sim`; this module only runs it,
sorts the events by time and writes them.

Events are spilled per day to a temporary directory while users are simulated, then each day is
sorted and formatted in turn, so memory holds one chunk of users or one day of events, never the
whole run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import logging
import os
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparkify._generate_pages import KINDS, LEVELS, PAGE_HTTP
from sparkify._generate_sim import (
    DAY_S,
    RECORD,
    Behaviour,
    Catalogue,
    Clock,
    UserProfile,
    build_catalogue,
    simulate_user,
)

log = logging.getLogger(__name__)

FORMAT_BATCH = 50_000  # lines formatted and written at a time


@dataclass(frozen=True)
class GenerateConfig:
    """Everything that determines the output; equal configs give byte-identical files."""

    users: int
    start: dt.date
    end: dt.date  # exclusive: the last events fall on the day before
    seed: int = 42
    chunk_users: int = 1_000
    compresslevel: int = 1
    behaviour: Behaviour = Behaviour()

    @property
    def start_s(self) -> int:
        return _epoch_s(self.start)

    @property
    def end_s(self) -> int:
        return _epoch_s(self.end)


@dataclass(frozen=True)
class Summary:
    """What a run produced, for the log and for callers that want to check it."""

    users: int  # users with a userId in the output
    churned: int
    events: int
    seconds: float
    bytes_written: int

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def _epoch_s(day: dt.date) -> int:
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp())


def generate(config: GenerateConfig, out: Path) -> Summary:
    """Simulate `config.users` users and write their events to `out`, sorted by ts."""
    if config.end <= config.start:
        raise ValueError(f"--end ({config.end}) must be after --start ({config.start})")
    if config.users < 1 or config.chunk_users < 1:
        raise ValueError("--users and --chunk-users must be at least 1")
    started = time.perf_counter()
    catalogue = build_catalogue()
    clock = Clock(config.start_s, config.end_s)
    n_days = -(-(config.end_s - config.start_s) // DAY_S)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    try:
        with tempfile.TemporaryDirectory(prefix="sparkify-generate-") as tmp:
            spill = Path(tmp)
            profiles, churned = _simulate_to_spill(config, clock, catalogue, spill, n_days)
            fragments = _Fragments.build(profiles, catalogue)
            with _open_output(partial, config.compresslevel) as write:
                events = _write_sorted(spill, n_days, fragments, write)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, out)
    return Summary(
        users=sum(p is not None for p in profiles),
        churned=churned,
        events=events,
        seconds=time.perf_counter() - started,
        bytes_written=out.stat().st_size,
    )


def _simulate_to_spill(
    config: GenerateConfig, clock: Clock, catalogue: Catalogue, spill: Path, n_days: int
) -> tuple[list[UserProfile | None], int]:
    """Run every user, appending their events to one file per day; returns profiles and churn count."""
    profiles: list[UserProfile | None] = []
    churned = 0
    session_id = 1
    for lo in range(0, config.users, config.chunk_users):
        chunk = []
        for index in range(lo, min(lo + config.chunk_users, config.users)):
            outcome = simulate_user(index, config.seed, clock, catalogue, config.behaviour, session_id)
            session_id = outcome.next_session_id
            shown = outcome.profile is not None and bool(np.any(outcome.events["user"] >= 0))
            profiles.append(outcome.profile if shown else None)
            churned += outcome.churned
            chunk.append(outcome.events)
        records = np.concatenate(chunk)
        day = (records["ts"] - config.start_s) // DAY_S
        order = np.argsort(day, kind="stable")
        records, day = records[order], day[order]
        bounds = np.searchsorted(day, np.arange(n_days + 1))
        for d in np.flatnonzero(np.diff(bounds)).tolist():
            with open(spill / f"{d:06d}.bin", "ab") as f:
                records[bounds[d] : bounds[d + 1]].tofile(f)
        log.info(
            "simulated %d/%d users, %d events in this chunk", len(profiles), config.users, len(records)
        )
    return profiles, churned


def _write_sorted(
    spill: Path, n_days: int, fragments: _Fragments, write: Callable[[bytes], None]
) -> int:
    """Sort each spilled day by (ts, session, item) and write it as JSON lines; returns the count."""
    events = 0
    for day in range(n_days):
        path = spill / f"{day:06d}.bin"
        if path.exists():
            records = np.fromfile(path, dtype=RECORD)
            path.unlink()
            records = records[np.lexsort((records["item"], records["session"], records["ts"]))]
            for lo in range(0, len(records), FORMAT_BATCH):
                write(fragments.lines(records[lo : lo + FORMAT_BATCH]).encode("utf-8"))
            events += len(records)
        if (day + 1) % 7 == 0 or day + 1 == n_days:
            log.info("wrote day %d/%d, %d events so far", day + 1, n_days, events)
    return events


@contextmanager
def _open_output(path: Path, compresslevel: int) -> Iterator[Callable[[bytes], None]]:
    """A `write(bytes)` callable for plain or gzip output.

    Compression and disk writes run on a helper thread (zlib releases the GIL), so on a machine
    with a spare core they overlap with formatting the next lines. The gzip header has no name or
    mtime, so reruns are byte-identical.
    """
    with open(path, "wb") as raw:
        if path.name.removesuffix(".partial").endswith(".gz"):
            gz = gzip.GzipFile(
                filename="", mode="wb", fileobj=raw, compresslevel=compresslevel, mtime=0
            )
            with gz, _background_writer(gz.write) as write:
                yield write
        else:
            with _background_writer(raw.write) as write:
                yield write


@contextmanager
def _background_writer(write: Callable[[bytes], object]) -> Iterator[Callable[[bytes], None]]:
    """Feed `write` from a bounded queue on one worker thread; errors surface in the caller."""
    pending: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def drain() -> None:
        while (block := pending.get()) is not None:
            if not failure:
                try:
                    write(block)
                except BaseException as err:  # noqa: BLE001 - handed to the caller below
                    failure.append(err)

    def put(block: bytes) -> None:
        if failure:
            raise failure[0]
        pending.put(block)

    worker = threading.Thread(target=drain, name="generate-writer", daemon=True)
    worker.start()
    try:
        yield put
    finally:
        pending.put(None)
        worker.join()
    if failure:
        raise failure[0]


@dataclass(frozen=True)
class _Fragments:
    """Pre-rendered JSON pieces, so that writing a line is a handful of string concatenations.

    Lists are indexed by the RECORD fields; index -1 (the last element) of `prefix`/`tail` is the
    anonymous user and of `song` is "no song", which is how those events get their shorter key set.
    """

    prefix: list[str]  # ,"userId":"..","sessionId":
    tail: list[str]  # ,"location":..,"gender":".."
    middle: list[str]  # ,"page":..,"itemInSession":   indexed by kind * 2 + level
    song: list[str]  # ,"artist":..,"song":..,"length":..

    @classmethod
    def build(cls, profiles: list[UserProfile | None], catalogue: Catalogue) -> _Fragments:
        prefix, tail = [], []
        for p in profiles:
            prefix.append(f',"userId":{_json(p.user_id)},"sessionId":' if p else "")
            tail.append(_user_tail(p) if p else "")
        prefix.append(',"userId":"","sessionId":')
        tail.append("")
        middle = []
        for kind in KINDS:
            method, status = PAGE_HTTP[kind.page]
            for level in LEVELS:
                middle.append(
                    f',"page":{_json(kind.page)},"auth":{_json(kind.auth)},"method":"{method}",'
                    f'"status":{status},"level":"{level}","itemInSession":'
                )
        song = [
            f',"artist":{_json(a)},"song":{_json(s)},"length":{length!r}'
            for a, s, length in zip(catalogue.artists, catalogue.titles, catalogue.lengths.tolist())
        ]
        song.append("")
        return cls(prefix, tail, middle, song)

    def lines(self, records: np.ndarray) -> str:
        """JSON lines for sorted records, byte for byte in eventsim's layout."""
        prefix, tail, middle, song = self.prefix, self.tail, self.middle, self.song
        return "".join(
            [
                f'{{"ts":{t}000{prefix[u]}{s}{middle[m]}{i}{tail[u]}{song[g]}}}\n'
                for t, u, s, m, i, g in zip(
                    records["ts"].tolist(),
                    records["user"].tolist(),
                    records["session"].tolist(),
                    records["mk"].tolist(),
                    records["item"].tolist(),
                    records["song"].tolist(),
                )
            ]
        )


def _json(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def _user_tail(p: UserProfile) -> str:
    # A user agent with a comma keeps the literal quotes it had in eventsim's CSV, as in real logs.
    agent = f'"{p.user_agent}"' if "," in p.user_agent else p.user_agent
    return (
        f',"location":{_json(p.location)},"userAgent":{_json(agent)},"lastName":{_json(p.last_name)},'
        f'"firstName":{_json(p.first_name)},"registration":{p.registration_s}000,"gender":"{p.gender}"'
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sparkify.generate",
        description=(
            "Write synthetic Sparkify (eventsim-format) events as JSON lines sorted by ts. "
            "Same arguments and seed give a byte-identical file."
        ),
        epilog=(
            "Simulated: heavy and light listeners, sessions of songs with interleaved pages, adverts "
            "for free users, upgrades and downgrades, logged-out and guest pages, sign-ups, and churn "
            "(Cancel, then Cancellation Confirmation, then silence) that is more likely after many "
            "adverts and thumbs down and is preceded by falling activity."
        ),
    )
    parser.add_argument(
        "--users",
        type=int,
        default=250,
        metavar="N",
        help="number of simulated people; about 4%% arrive as guests during the window and most of "
        "them sign up (default: %(default)s, the size of the Udacity mini file)",
    )
    parser.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        default=dt.date(2018, 10, 1),
        metavar="DATE",
        help="first day of the window, YYYY-MM-DD, from 00:00 UTC (default: %(default)s)",
    )
    parser.add_argument(
        "--end",
        type=dt.date.fromisoformat,
        default=dt.date(2018, 12, 3),
        metavar="DATE",
        help="day the window ends, YYYY-MM-DD, exclusive: no event at or after 00:00 UTC of this "
        "day (default: %(default)s)",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=42,
        metavar="S",
        help="random seed; the song catalogue is the same for every seed (default: %(default)s)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        metavar="PATH",
        help="output file; gzip-compressed if it ends in .gz, plain JSON lines otherwise; parent "
        "directories are created and the file appears only when complete",
    )
    parser.add_argument(
        "--chunk-users",
        type=int,
        default=1_000,
        metavar="N",
        help="users simulated between spills to a temporary directory; bounds memory and does "
        "not change the output (default: %(default)s)",
    )
    parser.add_argument(
        "--compresslevel",
        type=int,
        default=1,
        choices=range(1, 10),
        metavar="1-9",
        help="gzip level for .gz output; the default 1 is about 2x faster than 6, whose files are "
        "about 30%% smaller (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="log only warnings and errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    config = GenerateConfig(
        users=args.users,
        start=args.start,
        end=args.end,
        seed=args.seed,
        chunk_users=args.chunk_users,
        compresslevel=args.compresslevel,
    )
    try:
        summary = generate(config, args.out)
    except ValueError as err:
        log.error("%s", err)
        return 2
    churn_share = summary.churned / max(summary.users, 1)
    rows = [
        ("output", str(args.out)),
        ("window", f"{config.start} .. {config.end} (end exclusive)"),
        ("users with a userId", f"{summary.users:,}"),
        ("churned (Cancellation Confirmation)", f"{summary.churned:,} ({churn_share:.1%})"),
        ("events", f"{summary.events:,}"),
        ("bytes written", f"{summary.bytes_written:,}"),
        ("seconds", f"{summary.seconds:.1f}"),
        ("events per second", f"{summary.events_per_second:,.0f}"),
    ]
    width = max(len(k) for k, _ in rows)
    log.info("summary\n%s", "\n".join(f"  {k:<{width}}  {v}" for k, v in rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
