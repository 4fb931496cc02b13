"""A running job's progress in the HTTP API's job JSON and on the dashboard (a bar in the
jobs table and in the job's view)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from queuectl import Queue
from tests.api.conftest import claim
from tests.api.test_dashboard import expect, open_dashboard


def running_with_progress(queue: Queue) -> str:
    job = queue.enqueue("./render --frames 240", id="render").id
    [claimed] = claim(queue)
    assert queue.report_progress(job, claimed.token, 60, 240, "frame 60")
    return job


def test_the_job_json_carries_its_progress(client: TestClient, queue: Queue) -> None:
    job = running_with_progress(queue)
    waiting = queue.enqueue("true").id
    shown = client.get(f"/api/jobs/{job}").json()["progress"]
    assert shown["done"] == 60
    assert shown["total"] == 240
    assert shown["percent"] == 25.0
    assert shown["message"] == "frame 60"
    assert shown["eta_s"] is not None
    assert client.get(f"/api/jobs/{waiting}").json()["progress"] is None
    listed = {j["id"]: j["progress"] for j in client.get("/api/jobs").json()["jobs"]}
    assert listed == {job: shown, waiting: None}


@pytest.mark.browser
def test_the_dashboard_shows_a_progress_bar(live, page, queue: Queue) -> None:  # type: ignore[no-untyped-def]
    running_with_progress(queue)
    queue.enqueue("true", id="waiting")
    open_dashboard(page, live().url)
    bars = page.locator("#jobs progress.job-progress")
    expect(bars).to_have_count(1)
    expect(bars.first).to_have_attribute("value", "60")
    expect(bars.first).to_have_attribute("max", "240")
    page.locator('#jobs tr[data-id="render"]').click()
    field = page.locator('#detail-fields dd[data-field="progress"]')
    expect(field.locator("progress")).to_have_count(1)
    expect(field).to_contain_text("60/240 (25%) frame 60")
