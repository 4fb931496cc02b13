"""A real `queuectl serve` on a free loopback port, for the API and hardening tests."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import httpx

from tests.support.cli import QUEUECTL


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A `queuectl serve` subprocess on a free loopback port.

    Without `token` it uses the token it keeps beside the store, read from the dashboard
    address it prints; `headers` carry the token either way.
    """

    def __init__(self, target: str, token: str | None, options: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        env = {**os.environ, "QUEUECTL_DB": target}
        env.pop("QUEUECTL_API_TOKEN", None)
        args = [QUEUECTL, "serve", "--port", str(self.port), *(options or [])]
        if token:
            args += ["--token", token]
        self.process = subprocess.Popen(
            args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.printed: list[str] = []  # what it wrote to stderr before serving
        if not token:
            token = self._printed_token()
        self.headers = {"Authorization": f"Bearer {token}"}
        deadline = time.monotonic() + 20
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve exited {self.process.returncode}: {self.process.stderr.read()}"
                )  # type: ignore[union-attr]
            try:
                if (
                    httpx.get(f"{self.url}/api/health", headers=self.headers, timeout=1).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("serve did not answer /api/health within 20 s")
            time.sleep(0.05)

    def _printed_token(self) -> str:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.printed.append(line)
            if "#token=" in line:
                return line.strip().rsplit("#token=", 1)[1]
        raise RuntimeError(f"serve printed no dashboard address: {''.join(self.printed)}")

    def stop(self) -> tuple[str, str]:
        if self.process.poll() is None:
            self.process.terminate()
        try:
            out, err = self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, err = self.process.communicate()
        return out, "".join(self.printed) + err
