"""The systemd unit lets a job's out-of-memory kill end only that job (docs/production.md)."""

from __future__ import annotations

import configparser
from pathlib import Path

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "queuectl-worker.service"


def test_the_unit_delegates_its_cgroup_and_outlives_a_jobs_oom_kill() -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    service = parser["Service"]
    assert service["Delegate"] == "yes"  # job cgroups (and their limits) without root
    assert service["OOMPolicy"] == "continue"  # the default, stop, ends every job
    assert service["KillMode"] == "mixed"
