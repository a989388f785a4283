#!/usr/bin/env python3
"""The figures table of docs/benchmarks.md, measured again on this machine.

Usage: scripts/bench-table.py [REPS] [BINARY]

Runs every row of the table REPS times (3 unless given), the rows
interleaved (row 1, row 2, ..., row 1 again), so a machine that slows down
or speeds up during the run touches every row alike; each figure is the
median of its row's runs, the throughput of each run beside it. Every run is
`baton bench --json`, which checks every instance it ran. Prints the machine,
the build and the load average first, then a Markdown table.
"""

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")

# (label, arguments after `baton bench`)
ROWS = [
    ("W1, clients apart (the headline)", "--workload w1 --store sqlite --mode http --separate --instances 20000 --warmup 2000"),
    ("W1, clients in the server's process", "--workload w1 --store sqlite --mode http --instances 20000 --warmup 2000"),
    ("W1, clients apart, 2 500/s offered", "--workload w1 --store sqlite --mode http --separate --instances 10000 --warmup 2000 --rate 2500"),
    ("W1, clients apart, 16 in flight", "--workload w1 --store sqlite --mode http --separate --instances 10000 --warmup 2000 --in-flight 16"),
    ("W1, embedded", "--workload w1 --store sqlite --mode embedded --instances 20000 --warmup 2000"),
    ("W1, memory, embedded", "--workload w1 --store memory --mode embedded --instances 100000 --warmup 10000"),
    ("W2, clients apart", "--workload w2 --store sqlite --mode http --separate --instances 5000 --warmup 500"),
    ("W3, clients apart", "--workload w3 --store sqlite --mode http --separate --instances 5000 --warmup 500"),
    ("W4, clients apart", "--workload w4 --store sqlite --mode http --separate --instances 20000 --warmup 2000"),
]


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), "unknown CPU")
    memory_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    return f"{os.cpu_count()} cores ({model}), {memory_kb / 1024 / 1024:.0f} GiB"


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    binary = sys.argv[2] if len(sys.argv) > 2 else str(TARGET / "release" / "baton")
    build = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"machine: {machine()}; build {build}; load average at the start: {Path('/proc/loadavg').read_text().split()[:3]}")
    runs = {label: [] for label, _ in ROWS}
    for rep in range(reps):
        for label, arguments in ROWS:
            answer = subprocess.run([binary, "bench", *arguments.split(), "--json"], capture_output=True, text=True)
            if answer.returncode != 0:
                sys.exit(f"{label}: {answer.stderr.strip()}")
            report = json.loads(answer.stdout)
            runs[label].append(report)
            print(f"rep {rep + 1}, {label}: {report['instances_per_s']:.0f}/s, load {report['load_average'][0]:.2f}", file=sys.stderr)
    print()
    print("| row | instances/s: median (runs) | p50 / p99 ms | server CPU s / 1000 | clients' | whole machine | commit thread µs / job | WAL bytes / instance |")
    print("|---|---|---|---|---|---|---|---|")
    for label, _ in ROWS:
        reports = runs[label]

        def median(field):
            return statistics.median(r[field] for r in reports)

        def given(field):
            return all(r.get(field) is not None for r in reports)

        each = ", ".join(spaced(r["instances_per_s"]) for r in reports)
        # In the server's process, the process's CPU is the server's and the clients' together.
        server = f"{median('server_cpu_s_per_1000'):.3f}" if given("server_cpu_s_per_1000") else f"{median('cpu_s_per_1000'):.3f} (with the clients)"
        clients = f"{median('clients_cpu_s_per_1000'):.3f}" if given("clients_cpu_s_per_1000") else "–"
        wal = spaced(statistics.median(r["database"]["wal_bytes"] for r in reports)) if given("database") else "–"
        print(
            f"| {label} | **{spaced(median('instances_per_s'))}** ({each}) | {median('p50_ms'):.0f} / {median('p99_ms'):.0f} | {server} | {clients} "
            f"| {median('machine_cpu_s_per_1000'):.3f} | {median('commit_thread_us_per_job'):.0f} | {wal} |"
        )


def spaced(number: float) -> str:
    """A whole number with its thousands apart, as the docs write them: 12 345."""
    return f"{number:,.0f}".replace(",", " ")

if __name__ == "__main__":
    main()
