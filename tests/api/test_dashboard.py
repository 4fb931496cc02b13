"""The dashboard in headless Chromium, over real HTTP (the app under uvicorn in a thread).

QUEUECTL_UPDATE_SCREENSHOT=1 writes the screenshot to docs/dashboard.png (else to a temp dir).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.lifecycle import Outcome
from tests.api.conftest import DOCS, OWNER, TEST_TOKEN, claim, finish, register_runner, run_once

pytestmark = pytest.mark.browser

TOKEN = "dashboard-token"
XSS = "<img src=x onerror=window.__pwned=1>"


def expect(locator):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def open_dashboard(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/#token={TEST_TOKEN}")  # the address `serve` prints
    expect(page.locator("#connection")).to_contain_text("updated")


def test_the_page_loads_without_console_errors(live, page, queue: Queue) -> None:
    queue.enqueue("echo hello", id="first")
    open_dashboard(page, live().url)
    expect(page.locator('#jobs tr[data-id="first"]')).to_be_visible()
    expect(page.locator('#counts .card[data-state="pending"] .count')).to_have_text("1")
    expect(page.locator("#chart svg")).to_be_visible()
    assert page.errors == []


def test_a_job_enqueued_after_load_appears_without_a_reload(live, page, queue: Queue) -> None:
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    queue.enqueue("sleep 1", id="late")
    expect(page.locator('#jobs tr[data-id="late"]')).to_be_visible(timeout=6000)
    expect(page.locator('#counts .card[data-state="pending"] .count')).to_have_text("1")
    assert page.errors == []


def test_a_dead_job_is_retried_by_a_click(live, page, queue: Queue) -> None:
    job_id = run_once(queue, "false", 1)
    open_dashboard(page, live().url)
    row = page.locator(f'#dlq tr[data-id="{job_id}"]')
    expect(row).to_be_visible()
    row.locator("button.retry").click()
    expect(row).to_have_count(0)
    job = queue.get(job_id)
    assert (job.state, job.attempts) == ("pending", 0)
    assert page.errors == []


def test_the_detail_lists_attempts_and_shows_each_ones_output(live, page, queue: Queue) -> None:
    job_id = run_once(queue, "flaky", 1, b"first try\n", id="flaky")
    queue.requeue(job_id)
    (claimed,) = claim(queue, 1)
    finish(queue, claimed.id, 0, b"second try\n")
    open_dashboard(page, live().url)
    page.locator('#jobs tr[data-id="flaky"]').click()
    rows = page.locator("#detail-history tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#detail-output")).to_have_text("second try\n")
    rows.first.click()
    expect(page.locator("#detail-output")).to_have_text("first try\n")
    expect(page.locator("#detail-attempt")).to_have_text("of attempt 1")
    page.locator("#detail-retry").click()  # completed: it runs again
    expect(page.locator('#jobs tr[data-id="flaky"] .state')).to_have_text("pending")
    assert queue.get(job_id).state == "pending"
    assert page.errors == []


def test_hostile_commands_and_outputs_are_shown_as_text(live, page, queue: Queue) -> None:
    output = f"{XSS}<script>window.__pwned=2</script>".encode()
    run_once(queue, XSS, 1, output, id="xss", queue=XSS.replace("<", "").split()[0])
    open_dashboard(page, live().url)
    row = page.locator('#jobs tr[data-id="xss"]')
    expect(row.locator("td.command")).to_have_text(XSS)
    expect(page.locator('#dlq tr[data-id="xss"] td.command')).to_have_text(XSS)
    row.click()
    expect(page.locator("#detail-output")).to_have_text(output.decode())
    expect(page.locator('#detail-fields dd[data-field="command"]')).to_have_text(XSS)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("main img, main script").count() == 0
    assert page.errors == []


def test_the_token_is_asked_for_and_kept_for_the_session(live, page, queue: Queue) -> None:
    queue.enqueue("true", id="guarded")
    server = live(TOKEN)
    page.goto(server.url + "/")
    expect(page.locator("#token-panel")).to_be_visible()
    # Where the token is, and how to get the address carrying it again.
    expect(page.locator("#token-panel")).to_contain_text("queuectl serve --print-url")
    expect(page.locator("#token-panel")).to_contain_text("beside the store")
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    page.fill("#token-input", TOKEN)
    page.click("#token-form button")
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    page.reload()
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    expect(page.locator("#token-panel")).to_be_hidden()


def test_the_token_in_the_printed_address_is_taken_out_of_it(live, page, queue: Queue) -> None:
    queue.enqueue("true", id="guarded")
    server = live(TOKEN)
    page.goto(f"{server.url}/#token={TOKEN}")
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    expect(page.locator("#token-panel")).to_be_hidden()
    assert page.evaluate("location.href") == server.url + "/"
    assert TOKEN not in page.content()


def test_a_queue_is_paused_and_resumed_by_clicks(live, page, queue: Queue) -> None:
    queue.enqueue("true", queue="mail")
    open_dashboard(page, live().url)
    button = page.locator('#queues tr[data-queue="mail"] button')
    expect(button).to_have_text("Pause")
    button.click()
    expect(button).to_have_text("Resume")
    assert queue.queues()["mail"]["paused"] is True
    button.click()
    expect(button).to_have_text("Pause")
    assert queue.queues()["mail"]["paused"] is False


def fill_busy(queue: Queue) -> None:
    """Jobs in every state over three queues, an hour of finished ones, and a live runner."""
    now = queue.now_ms()
    for n in range(36):
        queue.enqueue(
            f"./process-batch --part {n}",
            id=f"batch-{n:02d}",
            queue=("web", "mail", "reports")[n % 3],
            max_retries=0,
        )
        (claimed,) = claim(queue, 1)
        finished = now - (n * 97 % 55) * 60_000 - 5_000
        code = 1 if n % 7 == 3 else 0
        outcome = Outcome(
            claimed.id,
            claimed.attempt,
            code,
            None,
            800 + n * 40,
            b"done\n",
            ended_mono=time.monotonic() - (now - finished) / 1000,
            token=claimed.token,
        )
        queue._store.finish_and_claim(OWNER, [outcome], 0, None, 30)
    queue.enqueue("python train.py --epochs 3", id="train-model", queue="reports")
    claim(queue, 1)
    for n in range(3):
        queue.enqueue(f"curl -fsS https://example.com/hook/{n}", id=f"hook-{n}", queue="web")
    queue.enqueue(
        "rsync -a --delete /srv/media/ backup.internal:/srv/media-mirror/ " * 3,
        id="a-rather-long-job-id-for-the-nightly-media-mirror",
        queue="maintenance-and-backups",
    )
    queue.enqueue("pg_dump shop > /backups/shop.sql", id="nightly-backup", queue="mail", delay="1h")
    queue.pause("mail")
    register_runner(queue, workers=4)


def screenshot_path(tmp_path: Path, name: str) -> Path:
    """Where a screenshot goes: QUEUECTL_SCREENSHOT_DIR (to look at them), else a temp dir."""
    folder = Path(os.environ.get("QUEUECTL_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


def test_screenshot_of_a_busy_dashboard(live, page, queue: Queue, tmp_path: Path) -> None:
    fill_busy(queue)
    open_dashboard(page, live().url)
    page.locator('#jobs tr[data-id="batch-03"]').click()
    expect(page.locator("#detail-output")).to_have_text("done\n")
    page.keyboard.press("Escape")
    expect(page.locator("#detail")).to_be_hidden()
    path = (
        DOCS / "dashboard.png"
        if os.environ.get("QUEUECTL_UPDATE_SCREENSHOT") == "1"
        else screenshot_path(tmp_path, "dashboard.png")
    )
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    assert page.errors == []


#: Every element whose text must be seen whole, and the box it must fit in.
LABELS = """
[...document.querySelectorAll(
  'header h1, header #connection, header button, header a, h2, h3, th, .card .count, ' +
  '.card .label, .filters label, .actions button, #jobs td, #dlq td, #queues td, #runners td, ' +
  '#batches td, ' +
  '#chart text, .legend'
)].filter((node) => node.getClientRects().length > 0).map((node) => {
  const box = node.getBoundingClientRect();
  const holder = node.closest('.card, .panel, header, dialog') || document.body;
  const frame = holder.getBoundingClientRect();
  // A table wider than a phone scrolls inside its panel: its cells can be scrolled to.
  const left = frame.left - holder.scrollLeft;
  const right = left + Math.max(holder.scrollWidth, frame.width);
  const clipped = node.closest('td.id, td.queue, td.ids, td.command, td.error');  // cut with "…" on purpose
  const out = box.left < left - 0.5 || box.right > right + 0.5
    || (!clipped && node.scrollWidth > node.clientWidth + 1 && node.tagName !== 'text');
  return out ? `${node.tagName.toLowerCase()} "${node.textContent.slice(0, 40)}": `
    + `${Math.round(box.left)}..${Math.round(box.right)} outside `
    + `${holder.className || holder.tagName} ${Math.round(frame.left)}..${Math.round(frame.right)}`
    : null;
}).filter(Boolean)
"""

#: Panels whose content is wider than they are (they would scroll sideways inside).
WIDE_PANELS = """
[...document.querySelectorAll('.panel, .cards')]
  .filter((node) => node.scrollWidth > node.clientWidth + 1)
  .map((node) => node.querySelector('h2') ? node.querySelector('h2').textContent : node.id)
"""

CHART = """(() => {
  const chart = document.querySelector('#chart svg').getBoundingClientRect();
  const holder = document.querySelector('#chart').getBoundingClientRect();
  const bars = [...document.querySelectorAll('#chart g rect')].map((r) => r.getBoundingClientRect());
  const ticks = [...document.querySelectorAll('#chart text.tick')];
  const now = ticks[ticks.length - 1].getBoundingClientRect();
  return {
    chartLeft: chart.left, chartRight: chart.right, holderWidth: holder.width,
    chartWidth: chart.width, barsRight: Math.max(...bars.map((b) => b.right)),
    nowText: ticks[ticks.length - 1].textContent, nowLeft: now.left, nowRight: now.right,
  };
})()"""


@pytest.mark.parametrize("width", [1400, 1024, 420])
def test_the_layout_fits_the_window(live, page, queue: Queue, tmp_path: Path, width: int) -> None:
    fill_busy(queue)
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(42)
    page.screenshot(path=str(screenshot_path(tmp_path, f"dashboard-{width}.png")), full_page=True)
    page.screenshot(path=str(screenshot_path(tmp_path, f"dashboard-{width}-top.png")))
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(LABELS) == []
    # Wide tables may scroll inside their panel on a phone, never on a desktop.
    wide = page.evaluate(WIDE_PANELS)
    if width >= 1024:
        assert wide == []
    else:
        assert "counts" not in wide
    chart = page.evaluate(CHART)
    assert abs(chart["chartWidth"] - chart["holderWidth"]) <= 1
    # The bars reach the right end of the drawing, and "now" is whole inside it.
    assert chart["barsRight"] >= chart["chartRight"] - 8
    assert chart["nowText"] == "now"
    assert chart["chartLeft"] <= chart["nowLeft"] < chart["nowRight"] <= chart["chartRight"]
    assert page.errors == []


@pytest.mark.parametrize("width", [1400, 420])
def test_a_runner_asked_to_stop_is_shown_stopping(
    live, page, queue: Queue, tmp_path: Path, width: int
) -> None:
    register_runner(queue, workers=2)
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, live().url)
    badge = page.locator("#runners tbody tr .state")
    expect(badge).to_have_text("up")
    queue.request_stop()
    expect(badge).to_have_text("stopping", timeout=6000)
    expect(badge).to_have_class("state stopping")
    page.locator("#runners").scroll_into_view_if_needed()
    expect(badge).to_be_in_viewport()  # beside the host, not scrolled away on a phone
    page.screenshot(path=str(screenshot_path(tmp_path, f"runner-stopping-{width}.png")))
    assert page.errors == []


def test_a_hook_job_wears_a_badge(live, page, queue: Queue, tmp_path: Path) -> None:
    queue.add_hook("page", ["dead"], {"command": "notify-me"})
    run_once(queue, "false", 1)
    open_dashboard(page, live().url)
    badge = page.locator("#jobs .hook-badge")
    expect(badge).to_have_count(1)
    expect(badge).to_have_text("hook page")
    row = page.locator("#jobs tr", has=page.locator(".hook-badge"))
    expect(row.locator("td.command")).to_contain_text("notify-me")
    page.screenshot(path=str(screenshot_path(tmp_path, "hook-badge.png")))
    assert page.errors == []


def test_a_failed_job_shows_its_next_run_and_runs_now_by_a_click(live, page, queue: Queue) -> None:
    job_id = run_once(queue, "false", 1, max_retries=3)
    open_dashboard(page, live().url)
    row = page.locator(f'#jobs tr[data-id="{job_id}"]')
    expect(row.locator(".next-run")).to_contain_text("next run")
    row.click()
    button = page.locator("#detail-retry")
    expect(button).to_have_text("Run now")
    button.click()
    expect(row.locator(".next-run")).to_have_count(0, timeout=6000)
    job = queue.get(job_id)
    assert (job.state, job.attempts) == ("pending", 0)
    assert page.errors == []


def test_a_job_opens_where_the_user_looks_and_escape_closes_it(
    live, page, queue: Queue, tmp_path: Path
) -> None:
    fill_busy(queue)
    open_dashboard(page, live().url)
    row = page.locator('#jobs tr[data-id="batch-20"]')
    row.scroll_into_view_if_needed()
    row.click()
    detail = page.locator("#detail")
    expect(page.locator("#detail-id")).to_have_text("batch-20")
    expect(detail).to_be_visible()
    box = detail.bounding_box()
    assert box is not None
    viewport = page.viewport_size
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= viewport["height"]
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= viewport["width"]
    expect(page.locator("#detail-output")).to_have_text("done\n")
    page.screenshot(path=str(screenshot_path(tmp_path, "dashboard-detail.png")))
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()
    # Polling goes on without bringing the closed detail back.
    expect(page.locator("#connection")).to_contain_text("updated")
    page.wait_for_timeout(2500)
    expect(detail).to_be_hidden()
    page.locator('#jobs tr[data-id="hook-1"]').click()
    expect(page.locator("#detail-id")).to_have_text("hook-1")
    page.locator("#detail-close").click()
    expect(detail).to_be_hidden()
    assert page.errors == []


STAMP = r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (GMT[+-]\d+(:\d\d)?|[A-Z]{2,5})$"


@pytest.mark.parametrize(("zone", "marker"), [("Europe/Paris", "GMT+"), ("UTC", "UTC")])
def test_times_are_local_24_hour_and_name_their_zone(
    live, browser, queue: Queue, zone: str, marker: str
) -> None:
    import re
    from datetime import datetime
    from zoneinfo import ZoneInfo

    job = queue.enqueue("true", id="timed")
    context = browser.new_context(
        viewport={"width": 1400, "height": 900}, timezone_id=zone, locale="en-US"
    )
    try:
        page = context.new_page()
        open_dashboard(page, live().url)
        cell = page.locator('#jobs tr[data-id="timed"] td').nth(5)
        expect(cell).not_to_be_empty()
        created = cell.inner_text()
        local = datetime.fromtimestamp(job.created_at_ms / 1000, ZoneInfo(zone))
        assert re.match(STAMP, created), created
        assert created.startswith(local.strftime("%Y-%m-%d %H:%M:%S ")), created
        assert marker in created
        header = page.locator("#connection").inner_text()
        assert re.match(STAMP, header.removeprefix("updated ")), header
        assert header.removeprefix("updated ")[:10] == datetime.now(ZoneInfo(zone)).strftime(
            "%Y-%m-%d"
        )
        assert header.split()[-1] == created.split()[-1]
    finally:
        context.close()


def test_the_api_docs_page_works_offline(live, page) -> None:
    server = live()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    # Anything not served by queuectl itself fails, as it would on a machine without internet.
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if route.request.url.startswith(server.url + "/") else route.abort()
        ),
    )
    page.goto(server.url + "/docs")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    expect(page.locator(".swagger-ui .title")).to_contain_text("queuectl")
    assert requested
    assert [url for url in requested if not url.startswith(server.url + "/")] == []
    assert page.errors == []
