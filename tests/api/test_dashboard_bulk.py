"""The dashboard in headless Chromium: a search the server answers, a bulk action over
hundreds of jobs confirmed with their count, and what a read-only token sees."""

from __future__ import annotations

from typing import Any

import pytest

from queuectl import Queue
from queuectl.lifecycle import Outcome
from tests.api.conftest import OWNER, claim, run_once
from tests.api.test_dashboard import expect, open_dashboard
from tests.support.claims import token_of

pytestmark = pytest.mark.browser


def dead_jobs(queue: Queue, count: int, queue_name: str, command: str) -> list[str]:
    """`count` dead jobs of one queue, through the store's own claim and settle."""
    jobs = queue.enqueue_many(
        [{"command": command, "queue": queue_name, "max_retries": 0} for _ in range(count)]
    )
    claimed = claim(queue, count, [queue_name])
    store = queue._store
    outcomes = [Outcome(c.id, 1, 1, None, 10, None, token=token_of(store, c.id)) for c in claimed]
    store.finish_and_claim(OWNER, outcomes, 0, None, 30)
    return [job.id for job in jobs]


def job_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#jobs tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


def test_the_search_box_asks_the_server(live, page, queue: Queue) -> None:
    # Many jobs that do not match, newer than the ones that do: the page of the newest 50
    # holds none of them, so only a search by the server finds them.
    queue.enqueue("rsync /srv backup:", id="sync-old")
    run_once(queue, "./import --all", 3, id="import-1", queue="imports")
    queue.enqueue_many([{"command": f"echo {n}"} for n in range(120)])
    open_dashboard(page, live().url)
    expect(page.locator("#jobs tbody tr")).to_have_count(50)
    page.fill("#search", "RSYNC")
    expect(page.locator("#jobs tbody tr")).to_have_count(1)
    assert job_ids(page) == ["sync-old"]
    page.fill("#search", "exit code 3")  # the last error's words
    expect(page.locator('#jobs tr[data-id="import-1"]')).to_be_visible()
    assert job_ids(page) == ["import-1"]
    page.fill("#search", "sync-")  # an id's start
    expect(page.locator('#jobs tr[data-id="sync-old"]')).to_be_visible()
    assert job_ids(page) == ["sync-old"]
    page.fill("#search", "no such text")
    expect(page.locator("#jobs tbody tr")).to_have_count(0)
    expect(page.locator("#no-job")).to_be_visible()
    page.fill("#search", "")
    expect(page.locator("#jobs tbody tr")).to_have_count(50)
    assert page.errors == []


def test_a_bulk_retry_of_hundreds_of_dead_jobs_confirmed_with_the_count(
    live, page, queue: Queue
) -> None:
    failed = dead_jobs(queue, 300, "ci", "./deploy --env staging")
    other = dead_jobs(queue, 5, "web", "./deploy --env staging")
    open_dashboard(page, live().url)
    expect(page.locator("#bulk")).to_be_hidden()  # no filter: nothing to act on at once
    page.select_option("#filter-queue", "ci")
    page.locator('#counts .card[data-state="dead"]').click()
    page.fill("#search", "deploy")
    expect(page.locator("#bulk")).to_be_visible()
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#bulk-retry")
    expect(page.locator("#bulk-message")).to_have_text("")
    assert asked == ['Retry the 300 jobs that match state dead, queue ci, search "deploy"?']
    assert queue.count("dead", "ci") == 300  # dismissed: nothing changed

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.once("dialog", accept)
    page.click("#bulk-retry")
    expect(page.locator("#bulk-message")).to_have_text("retried 300 of 300", timeout=20_000)
    assert queue.count("dead", "ci") == 0
    assert {queue.get(i).state for i in failed} == {"pending"}
    assert {queue.get(i).state for i in other} == {"dead"}  # another queue's: untouched
    expect(page.locator("#jobs tbody tr")).to_have_count(0)  # none dead any more
    assert page.errors == []


def test_a_read_token_sees_everything_and_is_offered_no_action(live, page, queue: Queue) -> None:
    run_once(queue, "false", 1, id="dead-1")
    queue.enqueue("sleep 9", id="waiting")
    queue.add_schedule("nightly", {"command": "./report"}, cron="0 6 * * *")
    secret = queue.add_token("viewer", "read")
    page.goto(f"{live().url}/#token={secret}")
    expect(page.locator("#connection")).to_contain_text("updated")
    expect(page.locator("#whoami")).to_have_text("viewer (read)")
    expect(page.locator('#jobs tr[data-id="waiting"]')).to_be_visible()
    expect(page.locator('#dlq tr[data-id="dead-1"]')).to_be_visible()
    for hidden in (
        '#jobs tr[data-id="waiting"] button',
        '#dlq tr[data-id="dead-1"] button',
        "#queues button",
        "#schedules button",
        "#dlq-retry-all",
        "#dlq-purge",
    ):
        expect(page.locator(hidden).first).to_be_hidden()
    page.locator('#counts .card[data-state="dead"]').click()
    expect(page.locator("#bulk")).to_be_visible()
    for button in ("#bulk-cancel", "#bulk-retry", "#bulk-hold", "#bulk-release", "#bulk-delete"):
        expect(page.locator(button)).to_be_hidden()
    page.locator('#jobs tr[data-id="dead-1"]').click()
    expect(page.locator("#detail")).to_be_visible()
    expect(page.locator("#detail-retry")).to_be_hidden()
    assert page.errors == []


def test_an_operate_token_may_retry_but_not_delete(live, page, queue: Queue) -> None:
    run_once(queue, "false", 1, id="dead-1")
    secret = queue.add_token("oncall", "operate")
    page.goto(f"{live().url}/#token={secret}")
    expect(page.locator("#whoami")).to_have_text("oncall (operate)")
    page.locator('#counts .card[data-state="dead"]').click()
    expect(page.locator("#bulk-retry")).to_be_visible()
    expect(page.locator("#bulk-delete")).to_be_hidden()
    expect(page.locator('#dlq tr[data-id="dead-1"] button.retry')).to_be_visible()
    expect(page.locator("#dlq-purge")).to_be_hidden()
    assert page.errors == []


def test_a_bulk_hold_then_release_of_the_jobs_a_search_finds(live, page, queue: Queue) -> None:
    for n in range(40):
        queue.enqueue(f"./render --frame {n}", id=f"frame-{n}", delay="1h")
    queue.enqueue("./encode", id="encode", delay="1h")
    open_dashboard(page, live().url)
    page.fill("#search", "render")
    expect(page.locator("#bulk")).to_be_visible()
    asked: list[str] = []

    def accept(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click("#bulk-hold")
    expect(page.locator("#bulk-message")).to_have_text("held 40 of 40", timeout=20_000)
    assert all(queue.get(f"frame-{n}").held for n in range(40))
    assert not queue.get("encode").held
    page.click("#bulk-release")
    expect(page.locator("#bulk-message")).to_have_text("released 40 of 40", timeout=20_000)
    assert asked == [
        'Hold the 40 jobs that match search "render"?',
        'Release the 40 held jobs that match search "render"?',
    ]
    assert not any(queue.get(f"frame-{n}").held for n in range(40))
    assert page.errors == []
