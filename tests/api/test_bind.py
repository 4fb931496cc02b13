"""Issue 15, SPEC 9.6: `serve` that cannot bind prints one `error:` line and exits 1, having
printed nothing that says it serves."""

from __future__ import annotations

import socket

from tests.support.cli import run_cli
from tests.support.server import free_port


def test_a_busy_port_is_one_error_line(target: str) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli(target, "serve", "--port", str(port), timeout=60)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"error: port {port} is in use (on 127.0.0.1)"]


def test_an_address_not_of_this_host_is_one_error_line(target: str) -> None:
    port = free_port()
    for host, reason in (
        ("192.0.2.1", "cannot assign requested address"),  # TEST-NET-1: never a local address
        ("no-such-host.invalid", "cannot bind no-such-host.invalid"),
    ):
        result = run_cli(target, "serve", "--host", host, "--port", str(port), "--token", "t" * 32)
        assert result.returncode == 1, result.stderr
        lines = result.stderr.splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: cannot bind {host}:{port}: "), lines
        assert reason in lines[0].lower()
        assert "serving" not in result.stderr + result.stdout
