"""Installing: the README's one install line names every extra its features need, a missing
extra is one line with the install command (exit 2), and the licence file matches pyproject."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.cli import QUEUECTL

ROOT = Path(__file__).resolve().parents[2]
SERVER_LINE = "error: queuectl serve needs the server extra: pip install 'queuectl[server]'"
POSTGRES_LINE = (
    "error: a postgresql:// store needs the postgres extra: pip install 'queuectl[postgres]'"
)


def blocking(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment whose Python cannot import `modules`, as if they were not installed."""
    folder = tmp_path / "site"
    folder.mkdir()
    lines = ["import sys"] + [f"sys.modules[{name!r}] = None" for name in modules]
    (folder / "sitecustomize.py").write_text("\n".join(lines) + "\n")
    env = {**os.environ, "PYTHONPATH": str(folder), "QUEUECTL_DB": str(tmp_path / "q.db")}
    env.pop("QUEUECTL_DEBUG", None)
    return env


def test_the_readme_install_line_names_the_extras_of_serve_and_postgresql() -> None:
    readme = (ROOT / "README.md").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    lines = re.findall(r"^pip install -e '\.\[([a-z,]+)\]'", readme, re.MULTILINE)
    assert lines, "the README has no `pip install -e '.[...]'` line"
    named = set(lines[0].split(","))
    assert {"server", "postgres"} <= named
    assert named <= set(extras)
    assert "serve" in readme
    assert "postgresql://" in readme


def test_no_dependency_is_declared_that_nothing_imports() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    assert not any(d.startswith("psycopg-pool") for d in declared)


def test_the_licence_file_matches_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == "MIT"
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "Copyright (c) 2026 the queuectl authors" in text


def test_require_names_the_extra_and_its_install_command(tmp_path: Path) -> None:
    code = (
        "from queuectl.extras import require\n"
        "require('json', 'never', 'json')\n"
        "try:\n"
        "    require('queuectl serve', 'server', 'json', 'fastapi')\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc.exit_code, exc.http_status, exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=blocking(tmp_path, "fastapi"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stderr == ""
    assert result.stdout == (
        "MissingExtraError 2 501 "
        "queuectl serve needs the server extra: pip install 'queuectl[server]'\n"
    )


def test_serve_without_the_server_extra_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = blocking(tmp_path, "fastapi", "uvicorn")
    result = subprocess.run(
        [QUEUECTL, "serve", "--port", "0"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (2, "", SERVER_LINE + "\n")


def test_a_postgresql_store_without_the_postgres_extra_is_one_line_and_exit_2(
    tmp_path: Path,
) -> None:
    env = blocking(tmp_path, "psycopg")
    env["QUEUECTL_DB"] = "postgresql://nobody@127.0.0.1:1/none"
    result = subprocess.run(
        [QUEUECTL, "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (2, "", POSTGRES_LINE + "\n")


def test_make_demo_installs_queuectl_without_the_development_tools(tmp_path: Path) -> None:
    """Without a development environment, `make demo` makes one of queuectl's own
    dependencies (not '.[dev]': the test and lint tools are hundreds of MB)."""
    dry = subprocess.run(
        ["make", "-n", "--no-print-directory", ".venv-demo/bin/queuectl", "-B"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert dry.returncode == 0, dry.stderr
    installs = [line for line in dry.stdout.splitlines() if "pip install" in line]
    assert installs == [".venv-demo/bin/pip install -q ."], dry.stdout
