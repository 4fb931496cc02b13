"""The dashboard's batches and held jobs in headless Chromium: the batch list with a bar of
each batch's jobs by state, a batch's jobs listed by a click and cancelled after a
confirmation, a waiting job held and released from its view and its row, and what a token's
role may not do not offered.

QUEUECTL_SCREENSHOT_DIR=/some/dir keeps the screenshots (else they go to a temp dir).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from queuectl import Queue
from tests.api.conftest import claim, finish
from tests.api.test_dashboard import (
    LABELS,
    WIDE_PANELS,
    expect,
    fill_busy,
    open_dashboard,
    screenshot_path,
)

pytestmark = pytest.mark.browser


def batches(queue: Queue) -> None:
    """An array of 10 frames limited to 2 (3 completed, 1 dead, 2 running, 4 waiting), a
    batch that completed, and one that finished with a job cancelled."""
    queue.enqueue_array(
        "1-10%2",
        {
            "id": "frames",
            "command": "render --frame $QUEUECTL_ARRAY_INDEX",
            "queue": "render",
            "max_retries": 0,
        },
    )
    for frame in (1, 2, 3, 4):
        [claimed] = claim(queue, 1, ["render"])
        finish(queue, claimed.id, 0 if frame < 4 else 1)
    assert sorted(c.id for c in claim(queue, 2, ["render"])) == ["frames.5", "frames.6"]
    queue.enqueue_many(
        [
            {"id": f"upload-{n}", "command": "upload", "queue": "upload", "batch": "uploads"}
            for n in range(3)
        ]
    )
    for _ in range(3):
        [claimed] = claim(queue, 1, ["upload"])
        finish(queue, claimed.id, 0)
    queue.enqueue("thumbs", id="thumb-1", batch="thumbs", queue="thumbs")
    queue.cancel("thumb-1")


def batch_row(page: Any, name: str) -> Any:
    return page.locator(f'#batches tr[data-batch="{name}"]')


def job_ids(page: Any) -> list[str]:
    ids: list[str] = page.eval_on_selector_all(
        "#jobs tbody tr", "rows => rows.map(r => r.dataset.id)"
    )
    return ids


@pytest.mark.parametrize("width", [1400, 1024, 420])
def test_the_batches_are_listed_with_a_bar_of_their_progress(
    live, page, queue: Queue, tmp_path: Path, width: int
) -> None:
    fill_busy(queue)
    batches(queue)
    page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(page, live().url)
    expect(page.locator("#batches tbody tr")).to_have_count(3)
    # The newest first.
    names = page.eval_on_selector_all("#batches tbody tr", "rows => rows.map(r => r.dataset.batch)")
    assert names == ["thumbs", "uploads", "frames"]
    frames = batch_row(page, "frames")
    expect(frames.locator(".st")).to_have_text("running")
    expect(frames.locator(".progress .done")).to_have_text("4/10 (40%)")
    expect(frames.locator('td[data-label="limit"]')).to_have_text("2")
    expect(frames.locator('td[data-label="completed"]')).to_have_text("3")
    expect(frames.locator('td[data-label="processing"]')).to_have_text("2")
    # The bar: each state's share of the whole, in the order the legend of states has.
    widths = frames.locator("svg.batch-bar rect").evaluate_all(
        "rects => rects.map(r => [r.getAttribute('class'), Number(r.getAttribute('width'))])"
    )
    assert widths == [
        ["bar-rest", 100],
        ["bar-completed", 30],
        ["bar-dead", 10],
        ["bar-processing", 20],
    ]
    expect(batch_row(page, "uploads").locator(".st")).to_have_text("completed")
    expect(batch_row(page, "uploads").locator(".progress .done")).to_have_text("3/3 (100%)")
    expect(batch_row(page, "uploads").locator("button")).to_have_count(0)  # nothing to cancel
    expect(batch_row(page, "thumbs").locator(".st")).to_have_text("finished")
    frames.scroll_into_view_if_needed()
    expect(frames.locator("svg.batch-bar")).to_be_in_viewport()
    page.screenshot(path=str(screenshot_path(tmp_path, f"batches-{width}.png")), full_page=True)
    page.locator("#batches-panel").screenshot(
        path=str(screenshot_path(tmp_path, f"batches-{width}-panel.png"))
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert page.evaluate(LABELS) == []
    if width >= 1024:
        assert page.evaluate(WIDE_PANELS) == []
    assert page.errors == []


def test_a_click_on_a_batch_lists_its_jobs_and_its_cancel_asks_first(
    live, page, queue: Queue
) -> None:
    batches(queue)
    queue.enqueue("true", id="unbatched")
    open_dashboard(page, live().url)
    batch_row(page, "frames").click()
    expect(page.locator("#jobs tbody tr")).to_have_count(10)
    assert set(job_ids(page)) == {f"frames.{n}" for n in range(1, 11)}
    chip = page.locator("#filter-batch")
    expect(chip).to_have_text("batch frames \u00d7")
    expect(batch_row(page, "frames")).to_have_class("selected")
    # The page's actions on every matching job take the batch as their filter.
    expect(page.locator("#bulk")).to_be_visible()
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss() if len(asked) == 1 else dialog.accept()

    page.on("dialog", answer)
    cancel = batch_row(page, "frames").locator("button.cancel")
    cancel.click()
    expect(cancel).to_be_visible()
    assert asked == ["Cancel the 6 jobs of batch frames that have not ended?"]
    assert queue.batch("frames")["done"] == 4  # dismissed: nothing changed
    cancel.click()
    expect(batch_row(page, "frames").locator(".st")).to_have_text("finished")
    expect(batch_row(page, "frames").locator("button")).to_have_count(0)
    assert queue.batch("frames")["counts"]["cancelled"] == 6
    assert queue.get("unbatched").state == "pending"
    chip.click()
    expect(chip).to_be_hidden()
    expect(page.locator('#jobs tr[data-id="unbatched"]')).to_be_visible()
    assert page.errors == []


def test_a_waiting_job_is_held_and_released_from_its_view_and_its_row(
    live, page, queue: Queue, tmp_path: Path
) -> None:
    queue.enqueue("./nightly-export", id="export")
    open_dashboard(page, live().url)
    row = page.locator('#jobs tr[data-id="export"]')
    row.click()
    hold, release = page.locator("#detail-hold"), page.locator("#detail-release")
    expect(hold).to_be_visible()
    expect(release).to_be_hidden()
    hold.click()
    expect(release).to_be_visible()
    expect(hold).to_be_hidden()
    assert queue.get("export").held
    expect(page.locator("#detail-when")).to_have_text(
        "Held: no runner takes it until it is released."
    )
    expect(page.locator('#detail-fields dd[data-field="held"]')).to_have_text("true")
    page.screenshot(path=str(screenshot_path(tmp_path, "held-view.png")))
    release.click()
    expect(hold).to_be_visible()
    assert not queue.get("export").held
    hold.click()
    expect(release).to_be_visible()
    page.keyboard.press("Escape")
    # Held, its row says so and offers the release.
    expect(row.locator(".held-badge")).to_have_text("held")
    expect(row.locator("button.release")).to_have_text("Release")
    page.screenshot(path=str(screenshot_path(tmp_path, "held-row.png")))
    row.locator("button.release").click()
    expect(row.locator(".held-badge")).to_have_count(0)
    expect(row.locator("button.cancel")).to_be_visible()
    assert not queue.get("export").held
    # Neither is offered for a job that is not waiting.
    [claimed] = claim(queue, 1)
    row.click()
    expect(page.locator('#detail-fields dd[data-field="state"]')).to_have_text("processing")
    expect(hold).to_be_hidden()
    expect(release).to_be_hidden()
    finish(queue, claimed.id, 0)
    assert page.errors == []


@pytest.mark.parametrize("role", ["read", "operate"])
def test_hold_release_and_a_batch_cancel_are_offered_as_the_role_allows(
    live, page, queue: Queue, role: str
) -> None:
    batches(queue)
    queue.enqueue("./nightly-export", id="export")
    queue.enqueue("./overnight", id="overnight", held=True)
    secret = queue.add_token("someone", role)
    page.goto(f"{live().url}/#token={secret}")
    expect(page.locator("#whoami")).to_have_text(f"someone ({role})")
    expect(page.locator("#batches tbody tr")).to_have_count(3)
    offered = role == "operate"
    for selector in (
        '#batches tr[data-batch="frames"] button',
        '#jobs tr[data-id="overnight"] button',
    ):
        if offered:
            expect(page.locator(selector)).to_be_visible()
        else:
            expect(page.locator(selector)).to_be_hidden()
    page.locator('#jobs tr[data-id="export"]').click()
    expect(page.locator("#detail")).to_be_visible()
    if offered:
        expect(page.locator("#detail-hold")).to_be_visible()
    else:
        expect(page.locator("#detail-hold")).to_be_hidden()
    page.keyboard.press("Escape")
    page.locator('#jobs tr[data-id="overnight"] td.id').click()
    expect(page.locator('#detail-fields dd[data-field="held"]')).to_have_text("true")
    if offered:
        expect(page.locator("#detail-release")).to_be_visible()
    else:
        expect(page.locator("#detail-release")).to_be_hidden()
    assert page.errors == []
