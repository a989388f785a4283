#!/usr/bin/env python3
"""Baton beside Restate on this machine, in interleaved repetitions.

    scripts/peers/run.py [--reps 3] [--workloads w1,w2,w3,w4] [--baton BINARY]

Installs Restate's server and TypeScript SDK from npm (scripts/peers/
package.json, pinned), starts restate-server on a fresh directory and the
workloads' endpoint (endpoint.mjs, a Node process of its own: the workers;
a task is a `ctx.run` there, Restate's cheapest, or with --restate-task call
a durable call to a worker service), registers it, and then, repetition after repetition, runs each workload on
Restate (drive.mjs: calls through the ingress, a fixed number in flight,
every answer checked) and on Baton (`baton bench --separate`: a new SQLite
file, starters and workers in a process of their own, every instance
checked; twice, the workers completing each job with a request of its own,
then each batch they took with one request, `--batched-reports`), each after a warm-up that is not measured. Both sides keep the
same number of instances in flight (64: a closed loop, each start waiting
for its instance to end before the next). Prints each run and a
table of medians. CPU per instance is every process of the side's (Restate:
server, endpoint and driver; Baton: server and clients), from /proc.
"""
import argparse, json, os, shutil, signal, statistics, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SERVER = os.path.join(HERE, "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server")
INSTANCES = {"w1": 20000, "w2": 3000, "w3": 3000, "w4": 20000}
IN_FLIGHT = 64


def cpu_of(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_cpu():
    ticks = [int(t) for t in open("/proc/stat").readline().split()[1:]]
    return sum(ticks[i] for i in (0, 1, 2, 5, 6, 7)) / os.sysconf("SC_CLK_TCK")


def wait_until(what, check, limit=60):
    began = time.time()
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.time() - began > limit:
            sys.exit(f"peers: {what} did not come up in {limit} s")
        time.sleep(0.2)


def post(url, body):
    request = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    return urllib.request.urlopen(request, timeout=30).read()


class Restate:
    def __init__(self):
        if not os.path.exists(SERVER):
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=HERE, check=True)
        self.base = tempfile.mkdtemp(prefix="baton-peers-restate-")
        log = open(os.path.join(self.base, "server.log"), "w")
        self.server = subprocess.Popen([SERVER, "--base-dir", self.base, "--no-logo"], stdout=log, stderr=log)
        self.endpoint = subprocess.Popen(["node", "--import", os.path.join(HERE, "node20.mjs"), os.path.join(HERE, "endpoint.mjs")], env={**os.environ, "PORT": "9080", "RESTATE_LOGGING": "WARN"}, stdout=log, stderr=log)
        wait_until("restate-server", lambda: urllib.request.urlopen("http://127.0.0.1:9070/health", timeout=2).status == 200)
        wait_until("the endpoint's registration", lambda: post("http://127.0.0.1:9070/deployments", {"uri": "http://127.0.0.1:9080"}) is not None)
        self.next = 0

    def run(self, workload, count, warmup, shape):
        self.drive(workload, warmup, shape)
        before = cpu_of(self.server.pid) + cpu_of(self.endpoint.pid)
        machine = machine_cpu()
        load = float(open("/proc/loadavg").read().split()[0])
        driven = self.drive(workload, count, shape)
        spent = cpu_of(self.server.pid) + cpu_of(self.endpoint.pid) - before + driven["cpu_seconds"]
        return {"per_s": count / driven["seconds"], "cpu_ms": spent / count * 1000, "machine_cpu_ms": (machine_cpu() - machine) / count * 1000, "load": load}

    def drive(self, workload, count, shape):
        first, self.next = self.next, self.next + count
        out = subprocess.run(["node", os.path.join(HERE, "drive.mjs"), workload, str(first), str(count), str(IN_FLIGHT), "http://127.0.0.1:8080", shape], capture_output=True, text=True)
        if out.returncode != 0:
            sys.exit(f"peers: Restate's driver failed: {out.stderr[-2000:]}")
        return json.loads(out.stdout)

    def stop(self):
        for process in (self.endpoint, self.server):
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)


def baton(binary, workload, count, warmup, batched):
    load = float(open("/proc/loadavg").read().split()[0])
    reports = ["--batched-reports"] if batched else []
    out = subprocess.run([binary, "bench", "--workload", workload, "--store", "sqlite", "--mode", "http", "--separate", *reports, "--instances", str(count), "--warmup", str(warmup), "--in-flight", str(IN_FLIGHT), "--json"], capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"peers: baton bench failed: {out.stderr[-2000:]}")
    report = json.loads(out.stdout)
    cpu_ms = report["server_cpu_s_per_1000"] + report["clients_cpu_s_per_1000"]
    return {"per_s": report["instances_per_s"], "cpu_ms": cpu_ms, "machine_cpu_ms": report["machine_cpu_s_per_1000"], "load": load}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workloads", default="w1,w2,w3,w4")
    parser.add_argument("--restate-task", choices=("run", "call"), default="run", help="a task on Restate: ctx.run in the endpoint (its cheapest) or a call to a worker service")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every workload's instance count")
    parser.add_argument("--baton", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/baton"))
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    print(f"restate task: {args.restate_task}; machine: {os.cpu_count()} cores, {open('/proc/cpuinfo').read().split('model name')[1].split(':')[1].splitlines()[0].strip()}; load {open('/proc/loadavg').read().split()[:3]}")
    restate = Restate()
    # Baton's workers two ways: a request per job (as Camunda's clients
    # complete jobs), and each batch they took in one request (as `baton
    # worker` does).
    sides = ("baton", "baton-batched", "restate")
    runs = {(side, w): [] for side in sides for w in workloads}
    try:
        for rep in range(args.reps):
            for w in workloads:
                count = max(100, int(INSTANCES[w] * args.scale))
                warmup = max(50, count // 10)
                for side in sides if rep % 2 == 0 else tuple(reversed(sides)):
                    result = restate.run(w, count, warmup, args.restate_task) if side == "restate" else baton(args.baton, w, count, warmup, side == "baton-batched")
                    runs[(side, w)].append(result)
                    print(f"rep {rep + 1} {w} {side:13} {result['per_s']:8.0f}/s  cpu {result['cpu_ms']:.3f} ms/instance  machine {result['machine_cpu_ms']:.3f} ms  load {result['load']:.2f}", flush=True)
    finally:
        restate.stop()
    print("\n| workload | Baton's workers | Baton instances/s | Restate instances/s | throughput ratio | CPU per instance, Baton / Restate (ms) | CPU ratio |")
    print("|---|---|---|---|---|---|---|")
    med = lambda xs, k: statistics.median(x[k] for x in xs)
    spread = lambda xs: " / ".join(f"{x['per_s']:.0f}" for x in xs)
    for w in workloads:
        r = runs[("restate", w)]
        for side, how in (("baton", "a request per job"), ("baton-batched", "a request per batch")):
            b = runs[(side, w)]
            print(f"| {w.upper()} | {how} | {med(b, 'per_s'):.0f} ({spread(b)}) | {med(r, 'per_s'):.0f} ({spread(r)}) | {med(b, 'per_s') / med(r, 'per_s'):.1f}x | {med(b, 'cpu_ms'):.3f} / {med(r, 'cpu_ms'):.3f} | {med(b, 'cpu_ms') / med(r, 'cpu_ms'):.2f} |")


if __name__ == "__main__":
    main()
