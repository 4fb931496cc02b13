"""`queuectl serve` as a real process: the public-bind refusal, and a few routes over real HTTP."""

from __future__ import annotations

import os
import subprocess

import httpx

from queuectl import Queue
from tests.support.cli import QUEUECTL, run_cli

TOKEN = "t0ken-for-serve-test"


def test_a_public_bind_without_token_is_refused(target: str) -> None:
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        result = run_cli(target, "serve", "--host", host, "--port", "1", timeout=30)
        assert result.returncode == 2, result.stderr
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == 1
        assert lines[0].startswith("error: refusing to serve")


def test_an_empty_token_counts_as_none(target: str) -> None:
    env = {**os.environ, "QUEUECTL_DB": target, "QUEUECTL_API_TOKEN": ""}
    result = subprocess.run(
        [QUEUECTL, "serve", "--host", "0.0.0.0", "--port", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ")


def test_routes_over_real_http(serve, queue: Queue) -> None:
    server = serve()
    with httpx.Client(base_url=server.url, headers=server.headers) as api:
        created = api.post("/api/jobs", json={"id": "real", "command": "echo hi"})
        assert created.status_code == 201
        assert queue.get("real").state == "pending"
        assert api.get("/api/jobs/real").json()["command"] == "echo hi"
        assert api.get("/api/jobs/ghost").status_code == 404
        status = api.get("/api/status").json()
        assert status["counts"]["pending"] == 1
        assert "queuectl_jobs" in api.get("/metrics").text
    assert "<title>queuectl</title>" in httpx.get(f"{server.url}/").text


def test_a_token_is_required_and_never_printed(serve) -> None:
    server = serve(TOKEN)
    assert httpx.get(f"{server.url}/api/status").status_code == 401
    assert httpx.get(f"{server.url}/api/status", headers=server.headers).status_code == 200
    assert httpx.get(f"{server.url}/").status_code == 200
    out, err = server.stop()
    assert server.process.returncode == 0
    assert TOKEN not in out + err
    assert "token required" in err
