"""Prints how often the CPU quota of this process's cgroup held it back (v1 or v2): run by a
job after its busy loop, it proves the quota was enforced however busy the machine was."""

from __future__ import annotations


def throttled() -> int:
    with open("/proc/self/mountinfo") as handle:
        mounts = [line.split() for line in handle]
    with open("/proc/self/cgroup") as handle:
        lines = [line.rstrip("\n").split(":", 2) for line in handle]
    for _, controllers, path in lines:
        for fields in mounts:
            dash = fields.index("-")
            kind, options = fields[dash + 1], fields[dash + 3].split(",")
            v1 = kind == "cgroup" and "cpu" in controllers.split(",") and "cpu" in options
            if not (v1 or (kind == "cgroup2" and controllers == "")):
                continue
            try:
                with open(f"{fields[4]}{path}/cpu.stat") as handle:
                    stat = dict(line.split() for line in handle)
            except OSError:
                continue
            if int(stat.get("nr_throttled", 0)):
                return int(stat["nr_throttled"])
    return 0


if __name__ == "__main__":
    print("throttled", throttled())
