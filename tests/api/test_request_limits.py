"""SPEC 9.8 over real HTTP (a `queuectl serve` process): an unauthenticated request is refused
before its body is read, a body over the limit is 413 before it is read whole, and the
server's memory stays flat while a client streams far more than the limit."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import pytest

MiB = 1 << 20


def _rss_kib(pid: int, field: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


class Reader(threading.Thread):
    """Reads the server's answer as soon as it comes: a server that closes a connection whose
    upload it did not read resets it, and a reset drops what the client had not read yet."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__(daemon=True)
        self.sock = sock
        self.data = b""
        self.first = threading.Event()

    def run(self) -> None:
        try:
            while chunk := self.sock.recv(65536):
                self.data += chunk
                self.first.set()
        except OSError:
            pass
        self.first.set()


def post_streaming(
    port: int, headers: dict[str, str], length: int | None, send: int
) -> tuple[bytes, int]:
    """POST /api/jobs declaring `length` (None: chunked), then send up to `send` body bytes,
    stopping as soon as the server answers. (its answer, body bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port))
    reader = Reader(sock)
    reader.start()
    try:
        head = ["POST /api/jobs HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        head.append("Content-Type: application/json")
        head += [f"{k}: {v}" for k, v in headers.items()]
        head.append(
            f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
        )
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        reader.first.wait(2.0)  # a refusal needs no body: it comes before any is sent
        sent = 0
        chunk = b"[" + b" " * (64 * 1024 - 1)
        while not reader.first.is_set() and sent < send:
            frame = chunk if length is not None else b"%x\r\n%s\r\n" % (len(chunk), chunk)
            try:
                sock.sendall(frame)
            except OSError:
                break
            sent += len(chunk)
        reader.first.wait(5.0)
        time.sleep(0.1)  # the rest of a response that came in two segments
        return reader.data, sent
    finally:
        with contextlib.suppress(OSError):  # the server may have reset it already
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()
        reader.join(5)


@pytest.mark.parametrize("length", [300 * MiB, None])
def test_an_unauthenticated_upload_is_refused_before_its_body(serve, length: int | None) -> None:
    server = serve()
    answer, sent = post_streaming(server.port, {}, length, 300 * MiB)
    assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert sent == 0


def test_a_declared_length_over_the_limit_is_413_before_the_body(serve) -> None:
    server = serve()
    answer, sent = post_streaming(server.port, server.headers, 300 * MiB, 300 * MiB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert sent == 0


def test_a_streamed_body_over_the_limit_is_413_and_memory_stays_flat(serve) -> None:
    server = serve()
    pid = server.process.pid
    before = _rss_kib(pid)
    started = time.monotonic()
    answer, sent = post_streaming(server.port, server.headers, None, 200 * MiB)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert sent < 32 * MiB, sent  # refused soon after the 1 MiB limit (kernel buffers hold some)
    peak = _rss_kib(pid, "VmHWM")
    took = time.monotonic() - started
    print(f"server RSS {before} KiB before, peak {peak} KiB; {sent} bytes sent in {took:.2f}s")
    assert peak - before < 16 * 1024


def test_the_limit_is_configurable(serve, target: str) -> None:
    from tests.support.server import Server

    del serve
    server = Server(target, None, ["--max-body", "2KiB"])
    try:
        answer, _ = post_streaming(server.port, server.headers, 4096, 4096)
        assert answer.startswith(b"HTTP/1.1 413 "), answer
        answer, _ = post_streaming(server.port, server.headers, 1024, 1024)
        assert answer.startswith(b"HTTP/1.1 422 "), answer
    finally:
        server.stop()


def test_a_body_of_tiny_jobs_past_the_per_request_limit_is_422_and_memory_stays_flat(
    serve, queue
) -> None:
    # About 1 MiB of tiny jobs cost the server some kilobytes of objects each, far more than
    # their text: refused whole once past the limit, before any is validated.
    import httpx

    from queuectl.api.routes import MAX_JOBS_PER_REQUEST

    server = serve()
    pid = server.process.pid
    count = 65_000
    body = "[" + ",".join('{"command":"t"}' for _ in range(count)) + "]"
    assert len(body) <= MiB
    before = _rss_kib(pid)
    answer = httpx.post(
        f"{server.url}/api/jobs",
        content=body,
        headers={**server.headers, "content-type": "application/json"},
        timeout=60,
    )
    after = _rss_kib(pid)
    print(f"server RSS {before} KiB before, {after} KiB after")
    assert answer.status_code == 422, answer.text
    assert answer.json() == {
        "error": f"at most {MAX_JOBS_PER_REQUEST} jobs per request, got {count}: send them in "
        "several requests (or use queuectl enqueue --file)"
    }
    assert queue.list() == []
    assert after - before < 32 * 1024


def test_the_jobs_per_request_limit_is_exact_and_documented(client, queue) -> None:
    from queuectl.api.routes import MAX_JOBS_PER_REQUEST

    over = client.post("/api/jobs", json=[{"command": "t"}] * (MAX_JOBS_PER_REQUEST + 1))
    assert over.status_code == 422, over.text
    assert queue.list() == []
    full = client.post("/api/jobs", json=[{"command": "t"}] * MAX_JOBS_PER_REQUEST)
    assert full.status_code == 201, full.text
    assert queue.count() == MAX_JOBS_PER_REQUEST
    docs = (Path(__file__).resolve().parents[2] / "docs" / "http-api.md").read_text()
    assert f"at most {MAX_JOBS_PER_REQUEST:,} jobs" in docs
