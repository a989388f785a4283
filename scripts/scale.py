#!/usr/bin/env python3
"""How one node holds up as waiting instances pile up (issue 16, item 6).

    scripts/scale.py N [STEP] [FOLDER]      (BATON_BIN: the binary)

Serves a new SQLite file in FOLDER (a new temporary folder unless given,
removed at the end unless given), deploys two models and starts, over HTTP
with four client processes on kept-alive connections:

* first, on the empty server, 20 000 instances of a model with one service
  task, started by four client processes while two worker processes take
  and complete their jobs (activation with a long poll, a request per job):
  their rate from the first start to the last completion;
* N instances that each wait on a timer due in 30 days and on a job no
  worker takes (a waiting timer, an open job and a running instance each),
  in steps of STEP (100 000 unless given);
  after each step it prints the start rate of that step, the server's
  resident memory, the file's size, and how long /readyz, /metrics and the
  first page of the instance list take;
* then the server idle for 20 s: its CPU over that time;
* then N instances of the service task in another tenant, whose jobs
  nobody takes (a backlog of the type the workers take, out of their
  reach), and 20 000 more of the service task with the default tenant's
  workers beside it;
* then 20 000 instances of a model with no wait (start, end), 20 000
  more waiting instances, and 20 000 more of the service task with its
  workers: their rates beside those on the empty server;
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
WAITING = """<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" targetNamespace="x"><process id="waits" isExecutable="true"><startEvent id="s"/><parallelGateway id="split"/><intermediateCatchEvent id="month"><timerEventDefinition><timeDuration>P30D</timeDuration></timerEventDefinition></intermediateCatchEvent><serviceTask id="later"><extensionElements><zeebe:taskDefinition type="later"/></extensionElements></serviceTask><endEvent id="e1"/><endEvent id="e2"/><sequenceFlow id="f1" sourceRef="s" targetRef="split"/><sequenceFlow id="f2" sourceRef="split" targetRef="month"/><sequenceFlow id="f3" sourceRef="split" targetRef="later"/><sequenceFlow id="f4" sourceRef="month" targetRef="e1"/><sequenceFlow id="f5" sourceRef="later" targetRef="e2"/></process></definitions>"""
WORK = """<?xml version="1.0"?><definitions xmlns="http://www.omg.org/spec/BPMN/20100524/MODEL" xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" targetNamespace="x"><process id="work" isExecutable="true"><startEvent id="s"/><serviceTask id="task"><extensionElements><zeebe:taskDefinition type="work"/></extensionElements></serviceTask><endEvent id="e"/><sequenceFlow id="f1" sourceRef="s" targetRef="task"/><sequenceFlow id="f2" sourceRef="task" targetRef="e"/></process></definitions>"""
WORKERS = 2
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
    port, workflow, count, tenant = args
    connection = http.client.HTTPConnection("127.0.0.1", port)
    body = json.dumps({"workflow": workflow, "tenant": tenant})
    for _ in range(count):
        connection.request("POST", "/v1/instances", body, {"Content-Type": "application/json"})
        answer = connection.getresponse()
        answer.read()
        if answer.status not in (200, 201):
            raise RuntimeError(f"a start answered {answer.status}")


def start(pool, port: int, workflow: str, count: int, tenant: str = "default") -> float:
    """Starts `count` instances; their rate per second."""
    began = time.monotonic()
    shares = [count // CLIENTS + (1 if i < count % CLIENTS else 0) for i in range(CLIENTS)]
    pool.map(start_some, [(port, workflow, share, tenant) for share in shares])
    return count / (time.monotonic() - began)


def post(connection: http.client.HTTPConnection, path: str, body: dict) -> dict:
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    answer = connection.getresponse()
    text = answer.read()
    if answer.status not in (200, 201, 204):
        raise RuntimeError(f"POST {path} answered {answer.status}: {text[:200]!r}")
    return json.loads(text) if text else {}


def work(port: int, total: int, done) -> None:
    """A worker process: takes jobs of type `work` and completes them until `total` are done."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    while done.value < total:
        taken = post(connection, "/v1/jobs/activate", {"type": "work", "worker": "scale", "max_jobs": 32, "lease_ms": 60000, "timeout_ms": 200, "tenants": ["default"]})
        for job in taken["jobs"]:
            post(connection, f"/v1/jobs/{job['key']}/complete", {"worker": "scale", "lease": job["lease"], "variables": {}})
            with done.get_lock():
                done.value += 1


def worked(pool, port: int, count: int) -> float:
    """Starts `count` instances of the service task while workers complete
    them; their rate from the first start to the last completion."""
    done = multiprocessing.Value("q", 0)
    workers = [multiprocessing.Process(target=work, args=(port, count, done)) for _ in range(WORKERS)]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    start(pool, port, "work", count)
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a worker exited with {worker.exitcode}")
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
        for name, xml in (("waits.bpmn", WAITING), ("straight.bpmn", NO_WAIT), ("work.bpmn", WORK)):
            with open(f"{folder}/{name}", "w") as model:
                model.write(xml)
            subprocess.run([BATON, "--server", f"http://127.0.0.1:{port}", "deploy", f"{folder}/{name}"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([BATON, "--server", f"http://127.0.0.1:{port}", "--tenant", "backlog", "deploy", f"{folder}/work.bpmn"], check=True, stdout=subprocess.DEVNULL)
        with multiprocessing.Pool(CLIENTS) as pool:
            worked_empty = worked(pool, port, 20_000)
            print(json.dumps({"empty_server_worked_per_s": round(worked_empty)}), flush=True)
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
            worked_after = worked(pool, port, 20_000)
            backlog = start(pool, port, "work", total, "backlog")
            worked_beside_backlog = worked(pool, port, 20_000)
        summary.update({"waiting": waiting + 20_000, "first_step_starts_per_s": round(rates[0]), "last_step_starts_per_s": round(rates[-1]),
                        "waiting_starts_per_s_after": round(timers_after), "no_wait_starts_per_s_after": round(straight),
                        "worked_per_s_empty": round(worked_empty), "worked_per_s_after": round(worked_after),
                        "backlog_starts_per_s": round(backlog), "worked_per_s_beside_another_tenants_backlog": round(worked_beside_backlog),
                        "idle_cpu_share": round(idle, 4), "server_rss_mb": round(resident_mb(server.pid), 1), "file_mb": round(file_mb(folder), 1),
                        "bytes_per_instance": round(file_mb(folder) * 1e6 / (waiting + total + 100_000))})
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
