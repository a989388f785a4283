#!/usr/bin/env python3
"""What `baton worker` costs per job: a server on a new SQLite file, N
instances of one service task started first, then `baton worker
--concurrency C -- true` timed until it has done them all.

Prints one JSON line: jobs per second; CPU seconds per 1 000 jobs of the
worker itself, of the commands it ran (`true`: fork, exec, exit) and of the
server during the worker's run; commits per job (starts included).

    scripts/worker-cost.py [N] [C]      (BATON_BIN: the binary; WORKER_BIN: another for the worker)
"""
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BATON = os.environ.get("BATON_BIN", os.path.expanduser("~/.cache/baton/target/release/baton"))
WORKER = os.environ.get("WORKER_BIN", BATON)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
CONCURRENCY = sys.argv[2] if len(sys.argv) > 2 else "8"
MODEL = """<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" targetNamespace="x"><process id="w1" isExecutable="true"><startEvent id="s"/><serviceTask id="t"><extensionElements><zeebe:taskDefinition type="w"/></extensionElements></serviceTask><endEvent id="e"/><sequenceFlow id="f1" sourceRef="s" targetRef="t"/><sequenceFlow id="f2" sourceRef="t" targetRef="e"/></process></definitions>"""


def cpu(pid: int) -> tuple[float, float]:
    """CPU seconds of a process, and of the children it has waited for."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick


def main() -> None:
    work = tempfile.mkdtemp(prefix="baton-worker-cost-")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([BATON, "serve", "--db", f"sqlite://{work}/baton.db", "--listen", f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz")
                break
            except OSError:
                time.sleep(0.05)
        with open(f"{work}/w1.bpmn", "w") as model:
            model.write(MODEL)
        subprocess.run([BATON, "--server", base, "deploy", f"{work}/w1.bpmn"], check=True, stdout=subprocess.DEVNULL)
        connection = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(N):
            connection.request("POST", "/v1/instances", json.dumps({"workflow": "w1", "variables": {"i": i}}), {"Content-Type": "application/json"})
            answer = connection.getresponse()
            answer.read()
            assert answer.status in (200, 201), answer.status
        server_before, _ = cpu(server.pid)
        began = time.time()
        worker = subprocess.Popen([WORKER, "--server", base, "worker", "--type", "w", "--concurrency", CONCURRENCY, "--max-jobs", str(N), "--", "true"], stderr=subprocess.DEVNULL)
        # Read its CPU once it has exited, before it is reaped.
        os.waitid(os.P_PID, worker.pid, os.WEXITED | os.WNOWAIT)
        took = time.time() - began
        own, commands = cpu(worker.pid)
        worker.wait()
        server_cpu = cpu(server.pid)[0] - server_before
        connection.request("GET", "/metrics")
        metrics = connection.getresponse().read().decode()
        commits = int(re.search(r"^baton_commits_total (\d+)", metrics, re.M).group(1))
        connection.request("GET", "/v1/instances/counts")
        counts = json.loads(connection.getresponse().read())
        assert counts["by_status"]["completed"] == N, counts
        per_1000 = lambda seconds: round(seconds / N * 1000, 3)  # noqa: E731
        print(json.dumps({
            "jobs": N, "concurrency": int(CONCURRENCY), "jobs_per_s": round(N / took),
            "worker_cpu_s_per_1000": per_1000(own), "commands_cpu_s_per_1000": per_1000(commands),
            "server_cpu_s_per_1000": per_1000(server_cpu), "commits_per_job": round(commits / N, 2),
        }))
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
