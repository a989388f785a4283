#!/usr/bin/env python3
"""What the commit loop's thread costs per job: `baton bench` (embedded, on
SQLite) run by each binary given, in turn, REPS times, so that builds are
compared in one sitting on one machine.

The thread's CPU is read from /proc while the bench runs (the last reading
before it exits), so builds that have no `commit_thread_us_per_job` in their
report are measured the same way as those that have. Prints one JSON line per
run: the binary, instances/s, whole-process CPU s per 1 000 instances, the
commit thread's µs per job (from /proc, and from the report where there is
one) and, where reported, statements, rows and WAL bytes per instance.

    scripts/commit-cost.py WORKLOAD INSTANCES REPS BINARY...
    scripts/commit-cost.py w1 5000 3 /tmp/before/baton target/release/baton
"""
import json
import os
import subprocess
import sys
import time


def commit_thread_seconds(pid: int) -> float | None:
    """CPU seconds (user + system) of the process's thread named baton-commit."""
    ticks = os.sysconf("SC_CLK_TCK")
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/comm") as comm:
                if comm.read().strip() != "baton-commit":
                    continue
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / ticks
        except OSError:
            continue
    return None


def run(binary: str, workload: str, instances: str) -> dict:
    bench = subprocess.Popen(
        [binary, "bench", "--workload", workload, "--store", "sqlite", "--mode", "embedded", "--instances", instances, "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    last = 0.0
    while bench.poll() is None:
        reading = commit_thread_seconds(bench.pid)
        if reading is not None:
            last = reading
        time.sleep(0.02)
    report = json.loads(bench.stdout.read())
    jobs = report["jobs_per_s"] * report["seconds"]
    database = report.get("database") or {}
    return {
        "binary": binary,
        "instances_per_s": round(report["instances_per_s"]),
        "cpu_s_per_1000": round(report["cpu_s_per_1000"], 3),
        "commit_thread_us_per_job": round(last / jobs * 1e6, 1),
        "reported_commit_thread_us_per_job": report.get("commit_thread_us_per_job"),
        "statements": database.get("statements"),
        "rows_written": database.get("rows_written"),
        "wal_bytes": database.get("wal_bytes"),
    }


def main() -> None:
    if len(sys.argv) < 5:
        sys.exit(__doc__)
    workload, instances, reps, binaries = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
    with open("/proc/loadavg") as load:
        print(json.dumps({"load_average": load.read().split()[:3]}))
    for _ in range(reps):
        for binary in binaries:
            print(json.dumps(run(binary, workload, instances)), flush=True)


if __name__ == "__main__":
    main()
