// A `baton serve` on a fresh SQLite file in a temporary folder, for the client tests.
// BATON_BIN names the binary (scripts/test passes the release build).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repository = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const baton = process.env.BATON_BIN || join(process.env.CARGO_TARGET_DIR || join(repository, 'target'), 'release', 'baton');

function freePort() {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

/** Starts the server (with the Zeebe gateway when `grpc`) and waits until it answers: `{ base, grpc, work, stop() }`; `stop` removes the folder too. */
export async function startBaton(prefix, { grpc = false } = {}) {
  const work = mkdtempSync(join(tmpdir(), prefix));
  const port = await freePort();
  const grpcPort = grpc ? await freePort() : undefined;
  const extra = grpc ? ['--grpc-listen', `127.0.0.1:${grpcPort}`] : [];
  const child = spawn(baton, ['serve', '--db', `sqlite://${join(work, 'baton.db')}`, '--listen', `127.0.0.1:${port}`, ...extra], { stdio: ['ignore', 'ignore', 'inherit'] });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300 && !(await fetch(`${base}/healthz`).then((r) => r.ok, () => false)); i++) await new Promise((r) => setTimeout(r, 50));
  return { base, grpc: grpc ? `grpc://127.0.0.1:${grpcPort}` : undefined, work, stop: () => { child.kill('SIGKILL'); rmSync(work, { recursive: true, force: true }); } };
}
