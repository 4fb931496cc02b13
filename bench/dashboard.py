"""What an open dashboard costs over a big store (the target: under 5% of a core at 1,000,000 jobs).

    python -m bench.dashboard [--stored 1000000] [--kinds sqlite postgres] [--seconds 60]

Builds the store of bench.reads (build_big_sqlite, build_big_pg), starts `queuectl serve` on a
free loopback port, and measures the server process's CPU (utime+stime from /proc/PID/stat)
over `--seconds` twice: with no page open, then with the dashboard open in headless Chromium
(Playwright), once the page has shown its first data, polling every 2 s as it does. In % of
one core. On PostgreSQL the database's own backends work for the server too: their CPU over the
same windows is reported beside it (`database_percent`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.common import CHILD_ENV, CLK_TCK, QUEUECTL, Skip, child_pids, cpu_ticks, stop_process
from bench.reads import build_big_pg, build_big_sqlite
from bench.stores import PG_SERVER, Scratch, fresh_store

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TOKEN = "bench-dashboard-token"
TARGET_PERCENT = 5.0
#: The first load over a million jobs may be slow on a loaded machine; it is not what is measured.
LOAD_TIMEOUT_MS = 120_000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dashboard", description=__doc__)
    parser.add_argument("--stored", type=int, default=1_000_000)
    parser.add_argument("--kinds", nargs="+", choices=["sqlite", "postgres"], default=None)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    kinds = args.kinds or ["sqlite", "postgres"]
    scratch = Scratch()
    results: dict[str, Any] = {}
    try:
        for kind in kinds:
            try:
                results[kind] = measure(kind, args.stored, args.seconds, scratch)
            except Skip as exc:
                results[kind] = {"skipped": str(exc)}
            print(f"{kind}: {json.dumps(results[kind])}", file=sys.stderr, flush=True)
    finally:
        scratch.close()
    print(render(results, args.stored))
    return 0


def measure(kind: str, stored: int, seconds: float, scratch: Scratch) -> dict[str, Any]:
    """The server's CPU with no page open and with the dashboard open, over a store of
    `stored` jobs of this kind."""
    missing = browser_missing()
    if missing:  # before the build, which takes minutes at a million jobs
        raise Skip(missing)
    with fresh_store(kind, scratch) as target:
        big = scratch.file("big", ".db")
        try:
            if kind == "sqlite":
                build_s = build_big_sqlite(big, stored)
                target = str(big)
            else:
                build_s = build_big_pg(target, stored)
            log = scratch.file("serve", ".log")
            with open(log, "wb") as out:
                server = subprocess.Popen(
                    [QUEUECTL, "--db", target, "serve", "--port", "0", "--token", TOKEN],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=out,
                    env=CHILD_ENV,
                )
            try:
                url = _address(server, log)
                backends = _Backends(target) if kind == "postgres" else None
                idle = _window(server.pid, backends, seconds)
                found = _with_page(url, server.pid, backends, seconds)
            finally:
                stop_process(server)
        finally:
            big.unlink(missing_ok=True)
    return {"stored": stored, "build_s": round(build_s, 1), "no_page": idle, **found}


def browser_missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing (apt-get install chromium)"
    return None


def _address(server: subprocess.Popen[bytes], log: Path, timeout_s: float = 60.0) -> str:
    """The http://host:port the server says it serves on, once it does."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.search(r"on (http://\S+?)/ ", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        if server.poll() is not None:
            raise Skip(f"queuectl serve exited: {log.read_text(errors='replace')[-300:]}")
        time.sleep(0.05)
    raise Skip(f"queuectl serve said nothing within {timeout_s:.0f} s")


class _Backends:
    """The CPU of the PostgreSQL backends connected to one database (the server runs there
    locally, so /proc has them)."""

    def __init__(self, target: str) -> None:
        self.database = urlsplit(target).path.lstrip("/")

    def pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            rows = admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.database,),
            ).fetchall()
        return [int(row[0]) for row in rows]

    def ticks(self, pids: list[int]) -> dict[int, int]:
        found: dict[int, int] = {}
        for pid in pids:
            with contextlib.suppress(OSError):  # one that ended: its last ticks went with it
                found[pid] = cpu_ticks(pid)
        return found


def _ticks(pid: int) -> int:
    return cpu_ticks(pid) + sum(_safe_ticks(child) for child in child_pids(pid))


def _safe_ticks(pid: int) -> int:
    try:
        return cpu_ticks(pid)
    except OSError:
        return 0


def _window(
    pid: int, backends: _Backends | None, seconds: float, page: Any = None
) -> dict[str, Any]:
    """% of one core the server (and the database's backends) used over `seconds`."""
    pids = backends.pids() if backends else []
    before_db = backends.ticks(pids) if backends else {}
    requested: list[str] = []
    if page is not None:
        page.on("request", lambda request: requested.append(request.url))
    before = _ticks(pid)
    started = time.monotonic()
    if page is not None:
        page.wait_for_timeout(seconds * 1000)  # keeps Playwright's event loop turning
    else:
        time.sleep(seconds)
    wall = time.monotonic() - started
    used = _ticks(pid) - before
    found: dict[str, Any] = {
        "seconds": round(wall, 1),
        "percent": round(100 * used / CLK_TCK / wall, 2),
    }
    if page is not None:
        found["polls"] = sum("/api/status" in address for address in requested)
    if backends:
        # a backend that started within the window spent all its ticks in it
        after_db = backends.ticks(sorted(set(before_db) | set(backends.pids())))
        db_used = sum(ticks - before_db.get(p, 0) for p, ticks in after_db.items())
        found["database_percent"] = round(100 * db_used / CLK_TCK / wall, 2)
    return found


def _with_page(url: str, pid: int, backends: _Backends | None, seconds: float) -> dict[str, Any]:
    """The dashboard open in headless Chromium: seconds to its first data, then the window."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            started = time.monotonic()
            page.goto(f"{url}/#token={TOKEN}")
            # (the page's CSP forbids eval: wait_for_function cannot run there)
            expect(page.locator("#connection")).to_contain_text("updated", timeout=LOAD_TIMEOUT_MS)
            loaded_s = time.monotonic() - started
            shown = page.locator("#jobs tbody tr").count()
            open_page = _window(pid, backends, seconds, page)
        finally:
            browser.close()
    return {"first_load_s": round(loaded_s, 2), "rows_shown": shown, "page_open": open_page}


def render(results: dict[str, Any], stored: int) -> str:
    """A markdown table: % of one core with no page and with the dashboard open."""
    lines = [
        f"| dashboard over {stored:,} jobs | no page | page open | target |",
        "|---|---|---|---|",
    ]
    for kind, cell in results.items():
        if "skipped" in cell:
            lines.append(f"| {kind} | n/a ({cell['skipped']}) | n/a | < {TARGET_PERCENT:g}% |")
            continue
        idle, open_ = cell["no_page"], cell["page_open"]
        shown = [f"{idle['percent']:.2f}%", f"{open_['percent']:.2f}%"]
        if "database_percent" in idle:
            shown = [
                f"{idle['percent']:.2f}% (+ database {idle['database_percent']:.2f}%)",
                f"{open_['percent']:.2f}% (+ database {open_['database_percent']:.2f}%)",
            ]
        ok = "ok" if open_["percent"] < TARGET_PERCENT else "MISSED"
        lines.append(f"| {kind} | {shown[0]} | {shown[1]} | < {TARGET_PERCENT:g}%: {ok} |")
    for kind, cell in results.items():
        if "skipped" not in cell:
            lines.append(
                f"\n{kind}: built in {cell['build_s']:.0f} s; first load "
                f"{cell['first_load_s']:.2f} s ({cell['rows_shown']} rows); "
                f"{cell['page_open']['polls']} polls of /api/status in "
                f"{cell['page_open']['seconds']:.0f} s"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
