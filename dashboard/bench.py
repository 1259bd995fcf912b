"""Benchmark the dashboard at scale: `python -m dashboard.bench` (a measurement, not a test).

Serves a lakehouse the pipeline built (--home, default SPARKIFY_HOME; `make bench` builds and trains
first) with `python -m dashboard` in a subprocess, and reports:

- the customer-lookup callback: HTTP round trips of the page callback for /customer?user=ID
  (p50, p95, max; targets p95 <= 50 ms);
- the at-risk page's first render: the server's callback, and a fresh headless chromium from
  navigation to the first grid row (target <= 1 s), when Playwright and chromium are present;
- a load test: --concurrency clients (default 50) looking customers up for --load-seconds (default
  60), each on its own connection: requests, errors (target 0), throughput and p50/p95/max;
- the app's memory: resident set size after the run, and its peak (target <= 1 GB).
"""

from __future__ import annotations

import argparse
import http.client
import json
import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger("dashboard.bench")

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def router_body(pathname: str, search: str = "") -> bytes:
    """The request the browser sends when a page (and its query string) is shown."""
    return json.dumps({
        "output": ".._pages_content.children..._pages_store.data..",
        "outputs": [{"id": "_pages_content", "property": "children"},
                    {"id": "_pages_store", "property": "data"}],
        "inputs": [{"id": "_pages_location", "property": "pathname", "value": pathname},
                   {"id": "_pages_location", "property": "search", "value": search}],
        "changedPropIds": ["_pages_location.search"],
        "state": [],
    }).encode()


def timed_post(conn: http.client.HTTPConnection, body: bytes) -> tuple[float, bytes]:
    started = time.perf_counter()
    conn.request("POST", "/_dash-update-component", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    data = response.read()
    elapsed = time.perf_counter() - started
    if response.status != 200:
        raise RuntimeError(f"callback answered HTTP {response.status}: {data[:200]!r}")
    return elapsed, data


def percentiles(times_ms: list[float]) -> dict[str, float]:
    times_ms = sorted(times_ms)
    return {"p50": statistics.median(times_ms), "p95": times_ms[int(round(0.95 * (len(times_ms) - 1)))],
            "max": times_ms[-1]}


def load_test(port: int, users: list[str], clients: int, seconds: float) -> dict[str, float]:
    """`clients` threads, each on its own connection, look random customers up for `seconds`."""
    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def client(seed: int) -> None:
        rng = random.Random(seed)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while time.perf_counter() < deadline:
            user = rng.choice(users)
            try:
                elapsed, data = timed_post(conn, router_body("/customer", "?user=" + user))
                ok = b'"customer-probability"' in data or b"Not scored" in data
                with lock:
                    (times.append(elapsed * 1000) if ok else errors.append(f"{user}: no customer rendered"))
            except (OSError, RuntimeError, http.client.HTTPException) as exc:
                with lock:
                    errors.append(f"{user}: {exc}")
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    if errors:
        log.warning("load test: %d errors, first: %s", len(errors), errors[0])
    return {"clients": clients, "seconds": wall, "requests": len(times) + len(errors), "errors": len(errors),
            "per_second": (len(times) + len(errors)) / wall, **(percentiles(times) if times else {})}


def memory_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


def wait_for(predicate, timeout: float, what: str) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if predicate():
            return time.perf_counter() - started
        time.sleep(0.1)
    raise SystemExit(f"timed out after {timeout:.0f}s waiting for {what}")


def browser_first_render(url: str) -> dict[str, float] | None:
    """Seconds from navigation to the first visible at-risk grid row: in a fresh browser (nothing
    cached), on a return visit (scripts cached), and when reached from another page via the menu."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not os.path.exists(CHROMIUM):
        return None

    def first_row(page, action) -> float:
        started = time.perf_counter()
        action()
        page.wait_for_selector(".ag-row", timeout=60_000)
        return time.perf_counter() - started

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        fresh = first_row(page, lambda: page.goto(url + "/at-risk"))
        page.goto(url + "/customer")
        page.wait_for_selector("text=Look up a customer", timeout=60_000)
        returning = first_row(page, lambda: page.goto(url + "/at-risk"))
        page.goto(url + "/customer")
        page.wait_for_selector("text=Look up a customer", timeout=60_000)
        page.wait_for_timeout(500)
        menu = first_row(page, lambda: page.click("a.nav-link[href='/at-risk']"))
        browser.close()
    return {"fresh_browser_s": fresh, "returning_visit_s": returning, "in_app_navigation_s": menu}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dashboard.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("SPARKIFY_HOME"),
                        help="lakehouse to measure, built and trained (default SPARKIFY_HOME)")
    parser.add_argument("--lookups", type=int, default=300, help="customer lookups to time (default 300)")
    parser.add_argument("--concurrency", type=int, default=50, help="load test: concurrent clients (default 50)")
    parser.add_argument("--load-seconds", type=float, default=60, help="load test: duration (default 60 s)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    home = Path(args.home).resolve() if args.home else None
    results: dict[str, object] = {}
    if home is None or not (home / "warehouse" / "sparkify.db" / "customers").is_dir():
        parser.error(f"no customers table under {home}: build and train first (`make build train`)")

    port = free_port()
    logfile = tempfile.NamedTemporaryFile(prefix="dashboard-bench-", suffix=".log", delete=False)
    env = {**os.environ, "SPARKIFY_HOME": str(home), "SPARKIFY_DASH_HOST": "127.0.0.1",
           "SPARKIFY_DASH_PORT": str(port)}
    env.pop("SPARKIFY_DASH_USERS", None)
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dashboard"], env=env, stdout=logfile, stderr=logfile,
                            cwd=Path(__file__).resolve().parents[1])
    try:
        log_path = Path(logfile.name)
        results["serving_after_s"] = wait_for(lambda: "Sparkify dashboard: http" in log_path.read_text(), 120,
                                             "the server")
        results["tables_warm_after_s"] = wait_for(lambda: "lakehouse warm" in log_path.read_text(), 600,
                                                  "the tables to load") + results["serving_after_s"]
        results["startup_rss_mb"] = memory_kb(proc.pid)["VmRSS"] / 1024
        log.info("server up on port %d; tables warm after %.1fs", port, results["tables_warm_after_s"])

        from dashboard.data import read_table, table_location

        users = read_table(table_location(home, "customers"))["user_id"].astype(str).tolist()
        results["customers"] = len(users)
        rng = random.Random(7)
        sample = [rng.choice(users) for _ in range(args.lookups)]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        timed_post(conn, router_body("/customer", "?user=" + sample[0]))  # the first request registers pages
        times = []
        for user in sample:
            elapsed, data = timed_post(conn, router_body("/customer", "?user=" + user))
            if b'"customer-probability"' not in data and b"Not scored" not in data:
                raise SystemExit(f"lookup of {user} did not render a customer")
            times.append(elapsed)
        unknown, _ = timed_post(conn, router_body("/customer", "?user=no-such-user-123"))
        results["lookup_ms"] = {**percentiles([t * 1000 for t in times]), "unknown_id": unknown * 1000}
        if args.concurrency and args.load_seconds:
            log.info("load test: %d clients for %.0f s", args.concurrency, args.load_seconds)
            results["load"] = load_test(port, users, args.concurrency, args.load_seconds)

        server_at_risk = [timed_post(conn, router_body("/at-risk"))[0] for _ in range(5)]
        results["at_risk_server_ms"] = {"first": server_at_risk[0] * 1000,
                                        "median": statistics.median(server_at_risk) * 1000}
        results["at_risk_browser_s"] = browser_first_render(f"http://127.0.0.1:{port}")
        conn.close()
        mem = memory_kb(proc.pid)
        results["rss_mb"] = mem["VmRSS"] / 1024
        results["peak_rss_mb"] = mem["VmHWM"] / 1024
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        os.unlink(logfile.name)

    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


def report(r: dict) -> None:
    lookup, at_risk, browser = r["lookup_ms"], r["at_risk_server_ms"], r.get("at_risk_browser_s")
    rows = [
        ("customers", f"{r['customers']:,}", ""),
        ("customer lookup callback p50", f"{lookup['p50']:.1f} ms", ""),
        ("customer lookup callback p95", f"{lookup['p95']:.1f} ms", "target <= 50 ms"),
        ("customer lookup callback max", f"{lookup['max']:.1f} ms", ""),
        ("unknown id", f"{lookup['unknown_id']:.1f} ms", ""),
        ("at-risk page callback (first)", f"{at_risk['first']:.0f} ms", ""),
        ("at-risk page callback (median)", f"{at_risk['median']:.0f} ms", ""),
    ]
    if "load" in r:
        load = r["load"]
        rows += [
            (f"load: {load['clients']} clients, {load['seconds']:.0f} s", f"{load['requests']:,} lookups",
             f"{load['per_second']:.0f}/s"),
            ("load: errors", f"{load['errors']}", "target 0"),
            ("load: lookup p50 / p95", f"{load.get('p50', float('nan')):.0f} / {load.get('p95', float('nan')):.0f} ms",
             f"max {load.get('max', float('nan')):.0f} ms"),
        ]
    if browser:
        rows += [("at-risk first row, fresh browser", f"{browser['fresh_browser_s']:.2f} s", "target <= 1 s"),
                 ("at-risk first row, return visit", f"{browser['returning_visit_s']:.2f} s", "scripts cached"),
                 ("at-risk first row, via the menu", f"{browser['in_app_navigation_s']:.2f} s", "")]
    else:
        rows.append(("at-risk first render in a browser", "skipped", "needs playwright + chromium"))
    rows += [
        ("app memory (RSS) after the run", f"{r['rss_mb']:.0f} MB", "target <= 1024 MB"),
        ("app memory peak (VmHWM)", f"{r['peak_rss_mb']:.0f} MB", ""),
        ("server up / tables warm", f"{r['serving_after_s']:.1f} s / {r['tables_warm_after_s']:.1f} s", ""),
    ]
    width = max(len(k) for k, _, _ in rows)
    load = os.getloadavg()[0]
    print(f"\nDashboard benchmark ({os.cpu_count()} CPUs, load average {load:.1f} at the end)")
    for key, value, note in rows:
        print(f"  {key:<{width}}  {value:>14}  {note}")


if __name__ == "__main__":
    main()
