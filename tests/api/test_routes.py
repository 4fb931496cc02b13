"""Every route of SPEC section 7 through FastAPI's TestClient, with each error code it can give."""

from __future__ import annotations

import re

import pytest

from queuectl import Queue
from queuectl.models import STATES
from tests.api.conftest import claim, finish, register_runner, run_once

# -- POST /api/jobs


def test_enqueue_one_job_answers_201_with_the_job(client, queue: Queue) -> None:
    response = client.post("/api/jobs", json={"id": "job1", "command": "sleep 2", "priority": 5})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "job1"
    assert body["state"] == "pending"
    assert body["priority"] == 5
    assert body == queue.get("job1").to_dict()


def test_enqueue_an_array_answers_201_with_every_job(client, queue: Queue) -> None:
    response = client.post(
        "/api/jobs", json=[{"command": "true"}, {"command": "false", "queue": "q2"}]
    )
    assert response.status_code == 201
    jobs = response.json()
    assert [j["command"] for j in jobs] == ["true", "false"]
    assert [j["queue"] for j in jobs] == ["default", "q2"]
    assert {j["id"] for j in jobs} == {j.id for j in queue.list()}


def test_invalid_jobs_answer_422_and_change_nothing(client, queue: Queue) -> None:
    for body in (
        {"command": ""},
        {"id": "bad id!", "command": "true"},
        {"command": "true", "bogus": 1},
        {"queue": "q"},
        [{"command": "true"}, {"command": "true", "priority": "high"}],
        [],
        "echo hi",
        42,
    ):
        response = client.post("/api/jobs", json=body)
        assert response.status_code == 422, body
        assert set(response.json()) == {"error"}
        assert response.json()["error"]
    assert queue.list() == []


def test_a_body_that_is_not_json_answers_422(client, queue: Queue) -> None:
    broken = client.post(
        "/api/jobs", content=b'{"command": ', headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 422
    # A "simple" cross-site request (text/plain) must not be taken as a job.
    plain = client.post(
        "/api/jobs", content=b'{"command": "true"}', headers={"Content-Type": "text/plain"}
    )
    assert plain.status_code == 422
    assert queue.list() == []


def test_a_json_body_without_content_type_is_read_as_json(client, queue: Queue) -> None:
    added = client.post("/api/jobs", content=b'{"command": "true", "id": "bare"}')
    assert added.status_code == 201, added.text
    assert queue.get("bare").command == "true"
    assert client.put("/api/config/max-retries", content=b'{"value": 5}').status_code == 200


def test_running_is_a_word_for_processing(client, queue: Queue) -> None:
    queue.enqueue("sleep 5", id="busy")
    queue.enqueue("true", id="waiting")
    claim(queue)
    assert [j.id for j in queue.list(state="running")] == ["busy"]
    page = client.get("/api/jobs", params={"state": "running"}).json()
    assert [job["id"] for job in page["jobs"]] == ["busy"]


def test_a_duplicate_id_answers_409(client, queue: Queue) -> None:
    assert client.post("/api/jobs", json={"id": "same", "command": "true"}).status_code == 201
    response = client.post("/api/jobs", json={"id": "same", "command": "false"})
    assert response.status_code == 409
    assert "same" in response.json()["error"]
    assert queue.get("same").command == "true"


# -- GET /api/jobs


def test_list_is_paginated_newest_first(client, queue: Queue) -> None:
    ids = [queue.enqueue("true", id=f"j{n}").id for n in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/jobs", params=params).json()
        seen += [job["id"] for job in body["jobs"]]
        cursor = body["next_cursor"]
        pages += 1
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert pages == 3


def test_list_filters_by_state_and_queue(client, queue: Queue) -> None:
    queue.enqueue("true", id="a", queue="web")
    queue.enqueue("true", id="b", queue="mail")
    queue.enqueue("true", id="c", queue="web")
    queue.cancel("c")
    web = client.get("/api/jobs", params={"queue": "web"}).json()["jobs"]
    assert [j["id"] for j in web] == ["c", "a"]
    pending_web = client.get("/api/jobs", params={"queue": "web", "state": "pending"}).json()
    assert [j["id"] for j in pending_web["jobs"]] == ["a"]
    assert pending_web["next_cursor"] is None
    # Repeated, as `list --state A --state B`: the union (the last alone was taken before).
    union = client.get("/api/jobs", params=[("state", "cancelled"), ("state", "pending")])
    assert [j["id"] for j in union.json()["jobs"]] == ["c", "b", "a"]
    both = client.get("/api/jobs", params=[("queue", "mail"), ("queue", "web"), ("state", "")])
    assert [j["id"] for j in both.json()["jobs"]] == ["c", "b", "a"]
    assert client.get("/api/jobs", params=[("state", "pending"), ("state", "x")]).status_code == 422


def test_list_refuses_bad_parameters_with_422(client) -> None:
    for params in (
        {"state": "sleeping"},
        {"limit": 0},
        {"limit": 5000},
        {"limit": "x"},
        {"cursor": "abc"},
    ):
        response = client.get("/api/jobs", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]


# -- one job


def test_show_and_output_of_a_job(client, queue: Queue) -> None:
    job_id = run_once(queue, "echo boom", 3, b"boom\n\xff")
    body = client.get(f"/api/jobs/{job_id}").json()
    assert body["state"] == "dead"
    assert body["exit_code"] == 3
    assert body["last_error"] == "exit code 3: boom"  # the last line that is text
    output = client.get(f"/api/jobs/{job_id}/output")
    assert output.status_code == 200
    assert output.headers["content-type"].startswith("text/plain")
    assert output.content == b"boom\n\xff"


def test_output_of_a_job_that_has_not_run_is_empty(client, queue: Queue) -> None:
    job = queue.enqueue("true")
    response = client.get(f"/api/jobs/{job.id}/output")
    assert response.status_code == 200
    assert response.content == b""


def test_unknown_jobs_answer_404(client) -> None:
    for method, path in (
        ("GET", "/api/jobs/nope"),
        ("GET", "/api/jobs/nope/output"),
        ("POST", "/api/jobs/nope/cancel"),
        ("POST", "/api/jobs/nope/retry"),
    ):
        response = client.request(method, path)
        assert response.status_code == 404, path
        assert response.json() == {"error": "no job 'nope'"}


def test_cancel_a_pending_and_a_running_job(client, queue: Queue) -> None:
    queue.enqueue("sleep 9", id="running")
    claim(queue)
    queue.enqueue("true", id="waiting")
    for job_id in ("running", "waiting"):
        response = client.post(f"/api/jobs/{job_id}/cancel")
        assert response.status_code == 200
        assert response.json()["state"] == "cancelled"
        assert queue.get(job_id).state == "cancelled"


def test_cancel_a_finished_job_answers_409(client, queue: Queue) -> None:
    job_id = run_once(queue, "true", 0)
    response = client.post(f"/api/jobs/{job_id}/cancel")
    assert response.status_code == 409
    assert "completed" in response.json()["error"]
    assert queue.get(job_id).state == "completed"


def test_cancel_an_invalid_id_answers_422(client) -> None:
    assert client.post("/api/jobs/bad%20id/cancel").status_code == 422


def test_retry_a_dead_job(client, queue: Queue) -> None:
    job_id = run_once(queue, "false", 1)
    response = client.post(f"/api/jobs/{job_id}/retry")
    assert response.status_code == 200
    body = response.json()
    assert (body["state"], body["attempts"]) == ("pending", 0)


def test_retry_runs_a_failed_job_waiting_for_its_retry_at_once(client, queue: Queue) -> None:
    job_id = run_once(queue, "false", 1, max_retries=3)
    waiting = queue.get(job_id)
    assert waiting.state == "failed"
    assert waiting.run_at_ms > queue.now_ms()
    body = client.post(f"/api/jobs/{job_id}/retry").json()
    assert (body["state"], body["attempts"]) == ("pending", 0)
    assert queue.get(job_id).run_at_ms <= queue.now_ms()
    assert claim(queue) != []  # due now


def test_retry_a_job_that_has_not_finished_answers_409(client, queue: Queue) -> None:
    job = queue.enqueue("true")
    response = client.post(f"/api/jobs/{job.id}/retry")
    assert response.status_code == 409
    assert "not completed or dead or cancelled or failed" in response.json()["error"]
    assert queue.get(job.id).state == "pending"


def test_retry_runs_a_completed_job_again_and_its_history_stays(client, queue: Queue) -> None:
    job_id = run_once(queue, "echo hi", 0, b"hi\n")
    response = client.post(f"/api/jobs/{job_id}/retry")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["attempts"]) == ("pending", 0)
    [entry] = client.get(f"/api/jobs/{job_id}").json()["history"]
    assert (entry["attempt"], entry["exit_code"]) == (1, 0)
    assert client.get(f"/api/jobs/{job_id}/output?attempt=1").text == "hi\n"
    assert client.get(f"/api/jobs/{job_id}/output?attempt=2").status_code == 404


# -- the DLQ


def test_dlq_list_retry_and_purge(client, queue: Queue) -> None:
    dead = [run_once(queue, f"exit {n}", n) for n in (1, 2, 3)]
    queue.enqueue("true", id="alive", queue="other")
    listed = client.get("/api/dlq").json()
    assert [j["id"] for j in listed] == dead[::-1]
    assert all(j["state"] == "dead" for j in listed)
    assert len(client.get("/api/dlq", params={"limit": 1}).json()) == 1

    response = client.post("/api/dlq/retry", json={"ids": [dead[0]]})
    assert response.status_code == 200
    assert response.json() == {"retried": [dead[0]]}
    assert queue.get(dead[0]).state == "pending"

    response = client.post("/api/dlq/retry", json={"all": True})
    assert sorted(response.json()["retried"]) == sorted(dead[1:])
    assert client.get("/api/dlq").json() == []

    again = run_once(queue, "false", 1, queue="later")
    response = client.delete("/api/dlq")
    assert response.status_code == 200
    assert response.json() == {"purged": 1}
    assert client.get(f"/api/jobs/{again}").status_code == 404


def test_dlq_retry_errors(client, queue: Queue) -> None:
    queue.enqueue("true", id="alive")
    assert client.post("/api/dlq/retry", json={}).status_code == 422
    assert client.post("/api/dlq/retry", json={"ids": ["alive"], "all": True}).status_code == 422
    assert client.post("/api/dlq/retry", json={"ids": "alive"}).status_code == 422
    assert client.post("/api/dlq/retry", json={"ids": ["alive"]}).status_code == 409
    assert client.post("/api/dlq/retry", json={"ids": ["ghost"]}).status_code == 404
    assert queue.get("alive").state == "pending"


# -- status, config, queues, health, throughput


def test_status_has_the_shape_of_status_json(client, queue: Queue) -> None:
    run_once(queue, "true", 0)
    queue.enqueue("sleep 5", id="busy", queue="slow")
    claim(queue)
    register_runner(queue)
    body = client.get("/api/status").json()
    assert body == queue.status()
    assert set(body) == {"counts", "queues", "runners", "done_last_minute", "progress"}
    assert list(body["counts"]) == list(STATES)
    assert body["counts"]["completed"] == 1
    assert body["queues"]["slow"]["processing"] == 1
    assert body["done_last_minute"] == 1
    (runner,) = body["runners"]
    assert {"id", "host", "pid", "workers", "started_at", "heartbeat_at", "running"} <= set(runner)
    assert runner["stopping"] is False


def test_a_runner_asked_to_stop_is_stopping_until_the_request_is_withdrawn(
    client, queue: Queue
) -> None:
    register_runner(queue)
    assert queue.request_stop() == 1
    [runner] = client.get("/api/status").json()["runners"]
    assert runner["stopping"] is True
    assert queue.withdraw_stop() == 1
    assert queue.withdraw_stop() == 0
    [runner] = client.get("/api/status").json()["runners"]
    assert runner["stopping"] is False


def test_config_get_and_set(client, queue: Queue) -> None:
    assert client.get("/api/config").json() == queue.config()
    response = client.put("/api/config/max-retries", json={"value": 7})
    assert response.status_code == 200
    assert response.json() == {"key": "max_retries", "value": 7}
    assert client.put("/api/config/job_timeout", json={"value": "5m"}).json()["value"] == 300
    assert client.get("/api/config").json()["max_retries"] == 7
    assert queue.get_config("job_timeout") == 300


def test_config_errors_answer_422_and_change_nothing(client, queue: Queue) -> None:
    before = queue.config()
    for key, body in (
        ("max_retries", {"value": 101}),
        ("max_retries", {"value": "many"}),
        ("backoff_base", {"value": 0.5}),
        ("colour", {"value": 1}),
        ("max_retries", {}),
    ):
        response = client.put(f"/api/config/{key}", json=body)
        assert response.status_code == 422, (key, body)
        assert response.json()["error"]
    assert queue.config() == before


def test_queues_pause_and_resume(client, queue: Queue) -> None:
    queue.enqueue("true", queue="web")
    assert client.post("/api/queues/mail/pause").json() == {"queue": "mail", "paused": True}
    queues = client.get("/api/queues").json()
    assert queues["mail"] == {
        "paused": True,
        "concurrency": None,
        "rate": None,
        "counts": dict.fromkeys(STATES, 0),
        "memory": None,
        "cpus": None,
        "max_procs": None,
    }
    limited = client.put("/api/queues/mail", json={"concurrency": 2, "rate": "10/1m"}).json()
    assert (limited["concurrency"], limited["rate"]) == (2, {"jobs": 10, "seconds": 60})
    assert client.put("/api/queues/mail", json={"rate": None}).json()["concurrency"] == 2
    refused = client.put("/api/queues/mail", json={"concurrency": 0})
    assert refused.status_code == 422
    assert "concurrency" in refused.text
    assert queues["web"]["paused"] is False
    assert queues["web"]["counts"]["pending"] == 1
    assert client.post("/api/queues/mail/resume").json() == {"queue": "mail", "paused": False}
    assert client.get("/api/queues").json()["mail"]["paused"] is False


def test_queue_with_an_invalid_name_answers_422(client) -> None:
    assert client.post("/api/queues/bad%20name/pause").status_code == 422


def test_health_names_the_store(client, queue: Queue) -> None:
    response = client.get("/api/health")
    assert response.status_code == 200
    info = queue._store.describe()
    body = response.json()
    assert (body["status"], body["kind"], body["schema_version"]) == (
        "ok",
        info["kind"],
        info["schema_version"],
    )
    assert "target" not in body  # a PostgreSQL URL may hold a password


def test_throughput_counts_finished_jobs_per_minute(client, queue: Queue) -> None:
    run_once(queue, "true", 0)
    run_once(queue, "true", 0)
    run_once(queue, "false", 1)
    body = client.get("/api/stats/throughput").json()
    assert body["bucket_seconds"] == 60
    assert len(body["buckets"]) == 60
    assert body["buckets"][-1]["completed"] == 2
    assert body["buckets"][-1]["failed"] == 1
    assert sum(b["completed"] + b["failed"] for b in body["buckets"]) == 3
    assert body["sampled"] == 3


# -- metrics, documentation, dashboard, unknown routes


def test_metrics_are_computed_at_scrape_time(client, queue: Queue) -> None:
    run_once(queue, "true", 0, queue="web")
    run_once(queue, "false", 1, queue="web")
    queue.enqueue("true", queue="mail")
    register_runner(queue, workers=3)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'queuectl_jobs{queue="web",state="completed"} 1.0' in text
    assert 'queuectl_jobs{queue="web",state="dead"} 1.0' in text
    assert 'queuectl_jobs{queue="mail",state="pending"} 1.0' in text
    assert 'queuectl_job_attempts{queue="web",state="dead"} 1.0' in text
    assert 'queuectl_job_duration_seconds_bucket{le="1.0",queue="web"} 0.0' in text
    assert 'queuectl_job_duration_seconds_bucket{le="5.0",queue="web"} 2.0' in text
    assert 'queuectl_job_duration_seconds_count{queue="web"} 2.0' in text
    assert 'queuectl_job_duration_seconds_sum{queue="web"} 3.0' in text
    assert 'queuectl_jobs_enqueued_total{queue="mail"} 1.0' in text
    assert 'queuectl_attempts_total{outcome="failed",queue="web"} 1.0' in text
    assert 'queuectl_oldest_due_job_age_seconds{queue="mail"}' in text
    assert "queuectl_runners 1.0" in text
    assert "queuectl_workers 3.0" in text
    assert "queuectl_completed_last_minute 1.0" in text
    queue.enqueue("true", queue="mail")
    assert 'queuectl_jobs{queue="mail",state="pending"} 2.0' in client.get("/metrics").text


def test_openapi_describes_every_route(client) -> None:
    spec = client.get("/openapi.json").json()
    expected = {
        "/api/jobs": {"get", "post"},
        "/api/jobs/{job_id}": {"get"},
        "/api/jobs/{job_id}/output": {"get"},
        "/api/jobs/{job_id}/cancel": {"post"},
        "/api/jobs/{job_id}/retry": {"post"},
        "/api/dlq": {"get", "delete"},
        "/api/dlq/retry": {"post"},
        "/api/status": {"get"},
        "/api/stats/throughput": {"get"},
        "/api/config": {"get"},
        "/api/config/{key}": {"put"},
        "/api/queues": {"get"},
        "/api/queues/{name}/pause": {"post"},
        "/api/queues/{name}/resume": {"post"},
        "/api/health": {"get"},
        "/api/schedules": {"get", "post"},
        "/api/schedules/{name}": {"delete"},
        "/metrics": {"get"},
    }
    for path, methods in expected.items():
        assert methods <= set(spec["paths"][path]), path
    assert "bearer" in str(spec["components"]["securitySchemes"]).lower()
    assert client.get("/docs").status_code == 200


def test_dashboard_is_served_with_a_content_security_policy(client) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "/static/app.js" in page.text
    scripts = re.findall(r'<script src="(/static/\w+\.js)"', page.text)
    for asset in (*scripts, "/static/style.css"):
        assert client.get(asset).status_code == 200
    assert not any("innerHTML" in client.get(script).text for script in scripts)


def test_unknown_routes_answer_a_json_404(client) -> None:
    response = client.get("/api/nothing")
    assert response.status_code == 404
    assert response.json() == {"error": "Not Found"}
    assert client.put("/api/jobs").status_code == 405


def test_finish_helper_leaves_a_job_failed_with_retries_left(client, queue: Queue) -> None:
    job = queue.enqueue("false", max_retries=2)
    claim(queue)
    finish(queue, job.id, 1)
    body = client.get(f"/api/jobs/{job.id}").json()
    assert (body["state"], body["attempts"]) == ("failed", 1)


# -- schedules


def needs_schedules(queue: Queue) -> None:
    if not hasattr(queue._store, "schedules"):
        pytest.skip(f"the {queue._store.kind} store has no schedules yet")


def test_schedules_add_list_and_remove(client, queue: Queue) -> None:
    needs_schedules(queue)
    response = client.post(
        "/api/schedules",
        json={"name": "nightly", "cron": "0 3 * * *", "job": {"command": "backup"}},
    )
    assert response.status_code == 201
    added = response.json()
    assert (added["name"], added["cron"], added["last_at"]) == ("nightly", "0 3 * * *", None)
    assert added["next_at"].endswith("T03:00:00.000Z")
    every = client.post(
        "/api/schedules", json={"name": "tick", "every": "5m", "job": {"command": "true"}}
    )
    assert every.json()["every"] == 300
    assert sorted(s["name"] for s in client.get("/api/schedules").json()) == ["nightly", "tick"]
    assert client.delete("/api/schedules/nightly").json() == {"removed": "nightly"}
    assert [s.name for s in queue.schedules()] == ["tick"]


def test_schedule_errors(client, queue: Queue) -> None:
    needs_schedules(queue)
    for body in (
        {"name": "x", "job": {"command": "true"}},
        {"name": "x", "cron": "0 3 * * *", "every": "5m", "job": {"command": "true"}},
        {"name": "x", "cron": "not cron", "job": {"command": "true"}},
        {"name": "x", "every": "5m", "job": {"command": ""}},
        {"name": "bad name", "every": "5m", "job": {"command": "true"}},
        {"name": "x", "every": "5m"},
    ):
        response = client.post("/api/schedules", json=body)
        assert response.status_code == 422, body
        assert response.json()["error"]
    assert queue.schedules() == []
    assert client.delete("/api/schedules/ghost").status_code == 404
