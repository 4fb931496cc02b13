"""The dashboard in headless Chromium, over real HTTP (the app under uvicorn in a thread).

QUEUECTL_UPDATE_SCREENSHOT=1 writes the screenshot to docs/dashboard.png (else to a temp dir).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from queuectl import Queue
from queuectl.lifecycle import Outcome
from tests.api.conftest import DOCS, OWNER, TEST_TOKEN, claim, register_runner, run_once

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
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    page.fill("#token-input", TOKEN)
    page.click("#token-form button")
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    page.reload()
    expect(page.locator('#jobs tr[data-id="guarded"]')).to_be_visible()
    expect(page.locator("#token-panel")).to_be_hidden()


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


def test_screenshot_of_a_busy_dashboard(live, page, queue: Queue, tmp_path: Path) -> None:
    now = queue.store.clock.now_ms()
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
            claimed.id, claimed.attempt, code, None, finished - 800 - n * 40, finished, b"done\n"
        )
        queue.store.finish_and_claim(OWNER, [outcome], 0, None, 30)
    queue.enqueue("python train.py --epochs 3", id="train-model", queue="reports")
    claim(queue, 1)
    for n in range(3):
        queue.enqueue(f"curl -fsS https://example.com/hook/{n}", id=f"hook-{n}", queue="web")
    queue.enqueue("pg_dump shop > /backups/shop.sql", id="nightly-backup", queue="mail", delay="1h")
    queue.pause("mail")
    register_runner(queue, workers=4)
    open_dashboard(page, live().url)
    page.locator('#jobs tr[data-id="batch-03"]').click()
    expect(page.locator("#detail-output")).to_have_text("done\n")
    path = (
        DOCS / "dashboard.png"
        if os.environ.get("QUEUECTL_UPDATE_SCREENSHOT") == "1"
        else tmp_path / "dashboard.png"
    )
    path.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000
    assert page.errors == []
