// Drives `count` instances of a workload through restate-server's ingress,
// `inFlight` at once (each call returns when its workflow has ended), and
// checks every answer names the tasks the instance should have run. Prints
// one JSON line: seconds, and this process's CPU seconds.
import { readFileSync } from "node:fs";

const [workload, first, count, inFlight, ingress, shape] = process.argv.slice(2);
const start = Number(first), n = Number(count), parallel = Number(inFlight);
const expected = (i) =>
  workload === "w1" ? ["t1"]
  : workload === "w4" ? [i % 200 > 100 ? "large" : "small"]
  : Array.from({ length: 10 }, (_, k) => `t${k + 1}`);
let next = start;
const began = performance.now();
async function loop() {
  while (next < start + n) {
    const i = next++;
    const answer = await fetch(`${ingress}/bench/${workload}-${i}/run`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workload, i, shape }),
    });
    const body = await answer.text();
    if (!answer.ok) throw new Error(`instance ${i}: ${answer.status} ${body}`);
    const done = JSON.parse(body).slice().sort();
    if (JSON.stringify(done) !== JSON.stringify(expected(i).slice().sort())) throw new Error(`instance ${i} ran ${done}`);
  }
}
await Promise.all(Array.from({ length: parallel }, loop));
const seconds = (performance.now() - began) / 1000;
const stat = readFileSync("/proc/self/stat", "utf8").split(") ")[1].split(" ");
const cpu = (Number(stat[11]) + Number(stat[12])) / 100;
console.log(JSON.stringify({ seconds, cpu_seconds: cpu }));
