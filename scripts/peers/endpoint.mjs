// The Baton bench's four workloads as Restate services, served to a
// restate-server by this Node process (workers apart from the server, as a
// Baton worker is). An instance is a workflow keyed by its index. A task is
// done one of two ways, as the caller asks: `run` (the default, Restate's
// cheapest) journals it as a side effect of the workflow, `ctx.run`, done in
// this process; `call` makes it a durable call to the `worker` service, an
// invocation of its own. Either way the workflow keeps its answer in its
// state (as a Baton instance keeps `done_<task>` among its variables).
import * as restate from "@restatedev/restate-sdk";

const worker = restate.service({
  name: "worker",
  handlers: {
    work: async (_ctx, task) => ({ done: task }),
  },
});

const work = (ctx, shape, name) =>
  shape === "call" ? ctx.serviceClient(worker).work(name) : ctx.run(name, () => ({ done: name }));

async function task(ctx, shape, name) {
  const reply = await work(ctx, shape, name);
  ctx.set(`done_${reply.done}`, true);
  return reply.done;
}

const ten = Array.from({ length: 10 }, (_, n) => `t${n + 1}`);

const bench = restate.workflow({
  name: "bench",
  handlers: {
    run: async (ctx, { workload, i, shape }) => {
      switch (workload) {
        case "w1":
          return [await task(ctx, shape, "t1")];
        case "w2": {
          const done = [];
          for (const name of ten) done.push(await task(ctx, shape, name));
          return done;
        }
        case "w3": {
          // A fork to ten tasks and a join.
          const calls = ten.map((name) => work(ctx, shape, name));
          const replies = await restate.RestatePromise.all(calls);
          for (const reply of replies) ctx.set(`done_${reply.done}`, true);
          return replies.map((reply) => reply.done);
        }
        case "w4":
          return [await task(ctx, shape, i % 200 > 100 ? "large" : "small")];
        default:
          throw new restate.TerminalError(`no workload ${workload}`);
      }
    },
  },
});

restate.endpoint().bind(worker).bind(bench).listen(Number(process.env.PORT ?? 9080));
