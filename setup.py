"""The runner's spawn into a job's cgroup, compiled at install (Linux; the rest is in
pyproject.toml). Optional: where it cannot be built (no compiler, another system) the install
goes on, and the runner spawns with posix_spawn instead."""

import sys

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "queuectl.runner._spawn",
            sources=["src/queuectl/runner/_spawn.c"],
            optional=True,
        )
    ]
    if sys.platform.startswith("linux")
    else []
)
