"""`queuectl serve` as a real process: the public-bind refusal, and a few routes over real HTTP."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx

from queuectl import Queue
from tests.support.cli import QUEUECTL, assert_clean_error, run_cli
from tests.support.server import free_port

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


def _serve_public(db: str, host: str, token: str, way: str) -> subprocess.CompletedProcess[str]:
    """`serve --host HOST` on `db` with the token given `way` (option or environment)."""
    env = {k: v for k, v in os.environ.items() if k != "QUEUECTL_API_TOKEN"}
    args = [QUEUECTL, "--db", db, "serve", "--host", host, "--port", str(free_port())]
    if way == "option":
        args += ["--token", token]
    else:
        env["QUEUECTL_API_TOKEN"] = token
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=30)


def test_a_short_token_is_refused_off_loopback(tmp_path: Path) -> None:
    db = str(tmp_path / "queue.db")
    for host in ("0.0.0.0", "::", "192.0.2.10"):
        for way in ("option", "environment"):
            for token in ("%", "%" * 31):
                result = _serve_public(db, host, token, way)
                line = assert_clean_error(result, 2, f"refusing to serve {host}")
                assert f"{len(token)}-character token" in line
                assert "at least 32" in line
                assert "openssl rand -hex 32" in line
                assert result.stdout == ""
                assert token not in line
    assert not os.path.exists(db)


def test_a_token_of_32_characters_may_guard_any_address(tmp_path: Path) -> None:
    # TEST-NET-1 is never this host's: past the token's check, the bind is what fails.
    for way in ("option", "environment"):
        result = _serve_public(str(tmp_path / "queue.db"), "192.0.2.1", "t" * 32, way)
        assert_clean_error(result, 1, "cannot bind 192.0.2.1")


def test_loopback_takes_any_token(serve) -> None:
    server = serve("a")
    assert httpx.get(f"{server.url}/api/status", headers=server.headers).status_code == 200
    assert httpx.get(f"{server.url}/api/status").status_code == 401


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
