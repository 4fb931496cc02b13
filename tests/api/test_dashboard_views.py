"""The dashboard's views in headless Chromium: state cards that filter, the jobs first, the
schedules, a failed job's next run and its row button, a running job's output as it is written
(a real runner), the phone layout, and the token prompt.

QUEUECTL_SCREENSHOT_DIR=/some/dir keeps the screenshots (else they go to a temp dir).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.api.conftest import TEST_TOKEN, claim, run_once
from tests.api.test_dashboard import expect, fill_busy, open_dashboard, screenshot_path
from tests.support.runners import process_env, start_runner, tag

__all__ = ["process_env", "start_runner", "tag"]  # fixtures: a real runner, its processes reaped

pytestmark = pytest.mark.browser


def busy_with_schedules(queue: Queue) -> None:
    """fill_busy's 42 jobs, a failed job waiting for its retry, a dead one and the job its
    hook enqueued, and two schedules."""
    fill_busy(queue)
    queue.add_hook("page-on-call", ["dead"], {"command": "notify --channel ops"})
    run_once(queue, "./flaky-upload --bucket media", 1, max_retries=3, id="flaky-upload")
    run_once(queue, "./doomed-import", 2, id="doomed-import", queue="import")
    queue.add_schedule("nightly-report", {"command": "./report --daily"}, cron="0 6 * * *")
    queue.add_schedule("tick", {"command": "date", "queue": "web"}, every="5m")


def job_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#jobs tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


@pytest.mark.parametrize("width", [1400, 420])
def test_a_state_card_filters_the_jobs(live, page, queue: Queue, width: int) -> None:
    run_once(queue, "false", 1, id="died")
    run_once(queue, "true", 0, id="done")
    queue.enqueue("true", id="waiting")
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(3)
    dead = page.locator('#counts .card[data-state="dead"]')
    expect(dead.locator(".count")).to_have_text("1")
    expect(page.locator('#counts .card[data-state="all"] .count')).to_have_text("3")
    dead.click()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert job_ids(page) == ["died"]
    expect(dead).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#filter-state")).to_have_value("dead")
    # It stays filtered across polls, and a job entering the state shows up.
    run_once(queue, "exit 3", 3, id="died-too", queue="other")
    expect(page.locator("#jobs tbody tr")).to_have_count(2, timeout=6000)
    assert sorted(job_ids(page)) == ["died", "died-too"]
    dead.click()  # again: every state
    expect(page.locator("#jobs tbody tr")).to_have_count(4)
    expect(dead).to_have_attribute("aria-pressed", "false")
    page.locator('#counts .card[data-state="completed"]').click()
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert job_ids(page) == ["done"]
    page.locator('#counts .card[data-state="all"]').click()
    expect(page.locator("#jobs tbody tr")).to_have_count(4)
    expect(page.locator('#counts .card[data-state="all"]')).to_have_attribute(
        "aria-pressed", "true"
    )
    assert page.errors == []


def test_the_output_of_a_running_job_appears_as_it_is_written(
    live, page, queue: Queue, start_runner, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    command = (
        f"echo step one; until [ -e {first} ]; do sleep 0.05; done; "
        f"echo step two; until [ -e {second} ]; do sleep 0.05; done; echo all done"
    )
    queue.enqueue(command, id="slow")
    start_runner("-n", "1")
    open_dashboard(page, live().url)
    row = page.locator('#jobs tr[data-id="slow"]')
    expect(row.locator(".state")).to_have_text("processing", timeout=10_000)
    row.click()
    output = page.locator("#detail-output")
    live_badge = page.locator("#detail-live")
    expect(output).to_have_text("step one\n", timeout=6000)
    expect(live_badge).to_be_visible()
    first.touch()
    # Still running, the view shows what it printed since, without a click.
    expect(output).to_have_text("step one\nstep two\n", timeout=6000)
    assert queue.get("slow").state == "processing"
    expect(live_badge).to_be_visible()
    page.screenshot(path=str(screenshot_path(tmp_path, "live-output.png")))
    second.touch()
    expect(output).to_have_text("step one\nstep two\nall done\n", timeout=6000)
    expect(live_badge).to_be_hidden()
    expect(page.locator('#detail-fields dd[data-field="state"]')).to_have_text("completed")
    assert page.errors == []


def test_the_live_view_stops_reading_when_the_job_ends(live, page, queue: Queue) -> None:
    queue.enqueue("sleep 60", id="long")
    assert [c.id for c in claim(queue, 1)] == ["long"]  # processing, as a runner would have it
    server = live()
    open_dashboard(page, server.url)
    reads: list[str] = []
    page.on("request", lambda r: reads.append(r.url) if r.url.endswith("/output") else None)
    page.locator('#jobs tr[data-id="long"]').click()
    expect(page.locator("#detail-live")).to_be_visible()
    page.wait_for_timeout(3000)
    while_running = len(reads)
    assert while_running >= 3  # about every second, not every poll of the page
    queue.cancel("long")
    expect(page.locator("#detail-live")).to_be_hidden(timeout=6000)
    ended = len(reads)
    page.wait_for_timeout(3000)
    assert len(reads) - ended <= 2  # the page's own pace again (every 2 s)
    page.locator("#detail-close").click()
    closed = len(reads)
    page.wait_for_timeout(2500)
    assert len(reads) == closed
    assert page.errors == []


@pytest.mark.backends("sqlite")
def test_the_jobs_table_is_seen_without_scrolling(live, page, queue: Queue) -> None:
    busy_with_schedules(queue)
    page.set_viewport_size({"width": 1400, "height": 900})
    open_dashboard(page, live().url)
    rows = page.locator("#jobs tbody tr")
    expect(rows).to_have_count(45)
    top = page.evaluate("document.querySelector('#jobs').getBoundingClientRect().top")
    assert top < 300, top
    for n in range(5):
        expect(rows.nth(n)).to_be_in_viewport()
    assert page.evaluate("window.scrollY") == 0
    assert page.errors == []


@pytest.mark.backends("sqlite")
def test_a_failed_job_shows_when_it_runs_next_and_runs_now_from_its_row(
    live, page, queue: Queue
) -> None:
    job_id = run_once(queue, "false", 1, max_retries=3)
    run_at = queue.get(job_id).run_at_ms
    delayed = queue.enqueue("true", id="later", delay="2h")
    open_dashboard(page, live().url)
    row = page.locator(f'#jobs tr[data-id="{job_id}"]')
    note = row.locator(".next-run")
    expect(note).to_contain_text("next run")
    shown = page.evaluate(
        "(ms) => new Intl.DateTimeFormat(undefined, {hour: '2-digit', minute: '2-digit',"
        " second: '2-digit', hourCycle: 'h23'}).format(new Date(ms))",
        run_at,
    )
    expect(note).to_contain_text(shown)
    expect(page.locator('#jobs tr[data-id="later"] .run-at')).to_contain_text("runs at")
    row.click()
    expect(page.locator("#detail-when")).to_contain_text("next run")
    expect(page.locator("#detail-when")).to_contain_text("Attempt 1 of 4 failed")
    page.locator("#detail-close").click()
    button = row.locator("button.retry")
    expect(button).to_have_text("Run now")
    button.click()
    expect(note).to_have_count(0, timeout=6000)
    expect(row.locator(".state")).to_have_text("pending")
    assert queue.get(job_id).state == "pending"
    assert queue.get(job_id).run_at_ms <= queue.now_ms()
    assert queue.get("later").run_at_ms == delayed.run_at_ms
    assert page.errors == []


@pytest.mark.backends("sqlite")
def test_a_job_is_cancelled_from_its_row_after_a_confirmation(live, page, queue: Queue) -> None:
    queue.enqueue("sleep 5", id="unwanted")
    open_dashboard(page, live().url)
    button = page.locator('#jobs tr[data-id="unwanted"] button.cancel')
    page.once("dialog", lambda dialog: dialog.dismiss())
    button.click()
    page.wait_for_timeout(300)
    assert queue.get("unwanted").state == "pending"
    expect(page.locator("#detail")).to_be_hidden()  # the button is not a click on the row
    messages: list[str] = []

    def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    button.click()
    expect(page.locator('#jobs tr[data-id="unwanted"] .state')).to_have_text("cancelled")
    assert queue.get("unwanted").state == "cancelled"
    assert messages == ["Cancel job unwanted?"]
    assert page.errors == []


@pytest.mark.backends("sqlite")
def test_the_schedules_are_listed_and_one_is_removed(live, page, queue: Queue) -> None:
    added = queue.add_schedule("nightly-report", {"command": "./report --daily"}, cron="0 6 * * *")
    queue.add_schedule("tick", {"command": "date", "queue": "web"}, every="5m")
    open_dashboard(page, live().url)
    rows = page.locator("#schedules tbody tr")
    expect(rows).to_have_count(2)
    nightly = page.locator('#schedules tr[data-schedule="nightly-report"]')
    expect(nightly.locator(".rule")).to_have_text("cron 0 6 * * * UTC")
    expect(nightly.locator("td.command")).to_have_text("./report --daily")
    assert added.next_at_ms is not None
    next_cell = nightly.locator('td[data-label="next"]')
    expect(next_cell).not_to_be_empty()
    assert "06:00:00" in (next_cell.get_attribute("title") or "") or page.evaluate(
        "Intl.DateTimeFormat().resolvedOptions().timeZone"
    ) not in ("UTC", "Etc/UTC")
    tick = page.locator('#schedules tr[data-schedule="tick"]')
    expect(tick.locator(".rule")).to_have_text("every 5m")
    expect(tick.locator("td.queue")).to_have_text("web")
    page.once("dialog", lambda dialog: dialog.accept())
    tick.locator("button.remove").click()
    expect(rows).to_have_count(1)
    assert [s.name for s in queue.schedules()] == ["nightly-report"]
    assert page.errors == []


#: Whether the element is drawn whole inside the window's width: not cut, not off-screen.
WHOLE = """(node) => {
  const box = node.getBoundingClientRect();
  return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth
    && node.scrollWidth <= node.clientWidth + 1;
}"""


@pytest.mark.backends("sqlite")
def test_on_a_phone_every_column_of_a_job_is_reachable(
    live, page, queue: Queue, tmp_path: Path
) -> None:
    busy_with_schedules(queue)
    page.set_viewport_size({"width": 420, "height": 900})
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(45)
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    long_row = page.locator('#jobs tr[data-id="a-rather-long-job-id-for-the-nightly-media-mirror"]')
    command = long_row.locator("td.command")
    long_row.scroll_into_view_if_needed()
    expect(command).to_be_visible()
    assert command.evaluate(WHOLE)
    assert command.inner_text().count("rsync -a --delete") == 3  # the whole command, wrapped
    failed = page.locator('#jobs tr[data-id="flaky-upload"]')
    failed.scroll_into_view_if_needed()
    for part in ("td.command", "td.error", "button.retry", ".next-run"):
        expect(failed.locator(part)).to_be_visible()
        assert failed.locator(part).evaluate(WHOLE), part
    expect(failed.locator("td.error")).to_contain_text("exit code 1")
    dead = page.locator('#dlq tr[data-id="doomed-import"]')
    dead.scroll_into_view_if_needed()
    for part in ("td.command", "td.error", "button.retry"):
        assert dead.locator(part).evaluate(WHOLE), part
    badge = page.locator("#jobs .hook-badge").first
    badge.scroll_into_view_if_needed()
    assert badge.evaluate(WHOLE)
    page.evaluate("window.scrollTo(0, 0)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 420
    assert page.errors == []


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("width", [420, 1024, 1400])
def test_screenshots_at_each_width(live, page, queue: Queue, tmp_path: Path, width: int) -> None:
    busy_with_schedules(queue)
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(45)
    expect(page.locator("#schedules tbody tr")).to_have_count(2)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.screenshot(path=str(screenshot_path(tmp_path, f"views-{width}-top.png")))
    page.screenshot(path=str(screenshot_path(tmp_path, f"views-{width}.png")), full_page=True)
    for panel in ("queues", "runners", "dlq", "schedules", "hooks"):
        holder = page.locator(f"#{panel}").locator("xpath=ancestor::section[1]")
        holder.screenshot(path=str(screenshot_path(tmp_path, f"views-{width}-{panel}.png")))
    page.evaluate("window.scrollTo(0, 0)")
    page.locator('#jobs tr[data-id="flaky-upload"]').click()
    expect(page.locator("#detail-when")).to_contain_text("next run")
    page.screenshot(path=str(screenshot_path(tmp_path, f"views-{width}-detail.png")))
    assert page.errors == []


@pytest.mark.backends("sqlite")
def test_the_token_prompt_says_where_the_token_is(live, page, queue: Queue) -> None:
    server = live("a-token-the-page-does-not-have")
    page.goto(server.url + "/")
    panel = page.locator("#token-panel")
    expect(panel).to_be_visible()
    expect(page.locator("#token-input")).to_be_focused()
    # The file `serve` keeps the token in, for each kind of store, as token_path names it.
    from queuectl.api.token import token_path

    assert Path(token_path(queue)).name == "queue.db.api-token"
    assert Path(token_path(queue)).parent == Path(queue.describe()["target"]).parent
    where = page.locator("#token-where")
    expect(where).to_contain_text("beside the store")
    expect(where).to_contain_text("beside the store for SQLite (queue.db.api-token for queue.db)")
    expect(where).to_contain_text("~/.local/share/queuectl/api-token-")
    expect(where).to_contain_text("$XDG_DATA_HOME")
    expect(where).to_contain_text("--token")
    expect(where).to_contain_text("QUEUECTL_API_TOKEN")
    # And how to get the address carrying it again.
    expect(page.locator("#token-url")).to_contain_text(
        "queuectl serve --print-url prints this page's address with the token again"
    )
    page.fill("#token-input", TEST_TOKEN)
    page.click("#token-form button")
    expect(page.locator("#token-message")).to_have_text("that token was refused")
    expect(panel).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 1400
