"""SPEC 9.8: with no token given, `serve` makes one, keeps it 0600 beside the store, reuses it
and prints the dashboard address carrying it; every route but /api/health needs it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest

from queuectl import Queue
from queuectl.api.token import token_path
from queuectl.errors import StoreError
from tests.support.cli import run_cli

CHOSEN = "a-token-chosen-by-the-user"


@pytest.fixture(autouse=True)
def private_data_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL tokens live under XDG_DATA_HOME: this test's own."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))


def test_serve_makes_a_private_token_and_prints_the_address_with_it(serve, queue: Queue) -> None:
    server = serve()
    token = server.headers["Authorization"].removeprefix("Bearer ")
    assert len(token) >= 32
    assert f"http://127.0.0.1:{server.port}/#token={token}" in "".join(server.printed)
    path = token_path(queue)
    if queue.describe()["kind"] == "sqlite":
        assert path == f"{queue.describe()['target']}.api-token"
    assert Path(path).read_text().strip() == token
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600

    assert httpx.get(f"{server.url}/api/health").status_code == 200
    for route in ("/api/status", "/api/jobs", "/metrics"):
        assert httpx.get(f"{server.url}{route}").status_code == 401, route
        assert httpx.get(f"{server.url}{route}", headers=server.headers).status_code == 200
    refused = httpx.post(f"{server.url}/api/jobs", json={"command": "id"})
    assert refused.status_code == 401
    assert queue.list() == []
    server.stop()

    again = serve()
    assert again.headers == server.headers  # reused by later runs


def test_print_url_prints_the_address_with_the_kept_token(serve, queue: Queue, target: str) -> None:
    printed = run_cli(target, "serve", "--print-url", "--port", "9999")
    assert printed.returncode == 0, printed.stderr
    token = Path(token_path(queue)).read_text().strip()
    assert printed.stdout == f"http://127.0.0.1:9999/#token={token}\n"
    server = serve()  # the server started later uses the same token
    assert server.headers["Authorization"] == f"Bearer {token}"
    server.stop()


def test_a_chosen_token_is_used_and_neither_kept_nor_printed(serve, queue: Queue) -> None:
    server = serve(CHOSEN)
    assert httpx.get(f"{server.url}/api/status", headers=server.headers).status_code == 200
    assert not os.path.exists(token_path(queue))
    _, err = server.stop()
    assert CHOSEN not in err
    assert "#token=" not in err


def test_a_token_file_others_can_read_is_made_private(serve, queue: Queue) -> None:
    path = Path(token_path(queue))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("an-old-token-that-was-kept-0644\n")
    path.chmod(0o644)
    server = serve()
    assert server.headers["Authorization"] == "Bearer an-old-token-that-was-kept-0644"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_token_file_that_is_a_link_is_refused(target: str, queue: Queue, tmp_path: Path) -> None:
    path = Path(token_path(queue))
    path.parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "elsewhere").write_text("someone-elses-token-0123456789\n")
    path.symlink_to(tmp_path / "elsewhere")
    from queuectl.api.app import create_app

    with pytest.raises(StoreError, match="cannot keep the API token"):
        create_app(target)
    result = run_cli(target, "serve", "--port", "0")
    assert result.returncode == 1
    assert result.stderr.startswith("error: ")
    assert "serving" not in result.stderr
