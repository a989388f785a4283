#!/usr/bin/env python3
"""How one node holds up as waiting instances pile up (issue 16, item 6).

    scripts/scale.py N [STEP] [FOLDER]      (BATON_BIN: the binary)

Serves a new SQLite file in FOLDER (a new temporary folder unless given,
removed at the end unless given), deploys two models and starts, over HTTP
with four client processes on kept-alive connections:

* N instances that each wait on a timer due in 30 days (a waiting timer
  and a running instance each), in steps of STEP (100 000 unless given);
  after each step it prints the start rate of that step, the server's
  resident memory, the file's size, and how long /readyz, /metrics and the
  first page of the instance list take;
* then the server idle for 20 s: its CPU over that time;
* then 20 000 instances of a model with no wait (start, end) and 20 000
  more timer instances: their start rate beside the first step's, the rate
  of an empty server;
* then the server is stopped and started again on the same file: the time
  until /readyz answers 200.

Prints one JSON object per line; the last is the summary.
"""
import http.client
import json
import multiprocessing
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BATON = os.environ.get("BATON_BIN", os.path.expanduser("~/.cache/baton/target/release/baton"))
CLIENTS = 4
WAITING = """<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="x"><process id="waits" isExecutable="true"><startEvent id="s"/><intermediateCatchEvent id="month"><timerEventDefinition><timeDuration>P30D</timeDuration></timerEventDefinition></intermediateCatchEvent><endEvent id="e"/><sequenceFlow id="f1" sourceRef="s" targetRef="month"/><sequenceFlow id="f2" sourceRef="month" targetRef="e"/></process></definitions>"""
NO_WAIT = """<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" targetNamespace="x"><process id="straight" isExecutable="true"><startEvent id="s"/><endEvent id="e"/><sequenceFlow id="f1" sourceRef="s" targetRef="e"/></process></definitions>"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def resident_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def file_mb(folder: str) -> float:
    return sum(os.path.getsize(os.path.join(folder, f)) for f in os.listdir(folder) if f.startswith("baton.db")) / 1e6


def serve(folder: str, port: int) -> subprocess.Popen:
    return subprocess.Popen([BATON, "serve", "--db", f"sqlite://{folder}/baton.db", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=open(f"{folder}/serve.log", "a"))


def wait_ready(port: int, limit: float = 600) -> float:
    """Seconds until /readyz answers 200."""
    began = time.monotonic()
    while time.monotonic() - began < limit:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz") as answer:
                if answer.status == 200:
                    return time.monotonic() - began
        except OSError:
            pass
        time.sleep(0.01)
    raise RuntimeError("the server did not become ready")


def timed_get(port: int, path: str) -> float:
    """Milliseconds a GET takes."""
    began = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}") as answer:
        answer.read()
    return (time.monotonic() - began) * 1000


def start_some(args) -> None:
    port, workflow, count = args
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"workflow": workflow})
    for _ in range(count):
        connection.request("POST", "/v1/instances", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 201):
            raise RuntimeError(f"a start answered {answer.status}")


def start(pool, port: int, workflow: str, count: int) -> float:
    """Starts `count` instances; their rate per second."""
    began = time.monotonic()
    shares = [count // CLIENTS + (1 if i < count % CLIENTS else 0) for i in range(CLIENTS)]
    pool.map(start_some, [(port, workflow, share) for share in shares])
    return count / (time.monotonic() - began)


def main() -> None:
    total = int(sys.argv[1])
    step = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    given = sys.argv[3] if len(sys.argv) > 3 else None
    folder = given or tempfile.mkdtemp(prefix="baton-scale-")
    os.makedirs(folder, exist_ok=True)
    port = free_port()
    server = serve(folder, port)
    summary = {}
    try:
        wait_ready(port, 60)
        for name, xml in (("waits.bpmn", WAITING), ("straight.bpmn", NO_WAIT)):
            with open(f"{folder}/{name}", "w") as model:
                model.write(xml)
            subprocess.run([BATON, "--server", f"http://127.0.0.1:{port}", "deploy", f"{folder}/{name}"], check=True, stdout=subprocess.DEVNULL)
        with multiprocessing.Pool(CLIENTS) as pool:
            rates = []
            waiting = 0
            while waiting < total:
                count = min(step, total - waiting)
                rate = start(pool, port, "waits", count)
                waiting += count
                rates.append(rate)
                line = {"waiting": waiting, "starts_per_s": round(rate), "server_rss_mb": round(resident_mb(server.pid), 1), "file_mb": round(file_mb(folder), 1),
                        "readyz_ms": round(timed_get(port, "/readyz"), 1), "metrics_ms": round(timed_get(port, "/metrics"), 1),
                        "list_ms": round(timed_get(port, "/v1/instances?limit=50"), 1)}
                print(json.dumps(line), flush=True)
            idle_before = cpu_seconds(server.pid)
            time.sleep(20)
            idle = (cpu_seconds(server.pid) - idle_before) / 20
            straight = start(pool, port, "straight", 20_000)
            timers_after = start(pool, port, "waits", 20_000)
        summary.update({"waiting": waiting + 20_000, "first_step_starts_per_s": round(rates[0]), "last_step_starts_per_s": round(rates[-1]),
                        "timer_starts_per_s_after": round(timers_after), "no_wait_starts_per_s_after": round(straight),
                        "idle_cpu_share": round(idle, 4), "server_rss_mb": round(resident_mb(server.pid), 1), "file_mb": round(file_mb(folder), 1),
                        "bytes_per_waiting_instance": round(file_mb(folder) * 1e6 / (waiting + 40_000))})
        server.terminate()
        server.wait(timeout=60)
        server = serve(folder, port)
        summary["restart_to_ready_s"] = round(wait_ready(port), 2)
        summary["server_rss_after_restart_mb"] = round(resident_mb(server.pid), 1)
        summary["readyz_ms_after_restart"] = round(timed_get(port, "/readyz"), 1)
        print(json.dumps(summary), flush=True)
    finally:
        server.terminate()
        server.wait(timeout=60)
        if given is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
