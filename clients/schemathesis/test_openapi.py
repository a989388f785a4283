"""Schemathesis against a real `baton serve`: requests generated from the
server's own OpenAPI document (every phase: examples, coverage with
invalid data, fuzzing, and stateful sequences that follow the links
between operations), with one check that must hold for every answer: no
5xx, but Camunda's documented 504 for an `awaitCompletion` wait that ran out
(hooks.py). A failure prints the request that caused it, as curl.

BATON_BIN names the binary (scripts/test passes the release build);
BATON_SCHEMATHESIS_EXAMPLES the examples per operation (default 5; more outside CI).
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from baton_server import BATON, BatonServer  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def main() -> int:
    server = BatonServer("baton-schemathesis-")
    try:
        # Something to find: a workflow with a service task, and a few instances.
        env = dict(os.environ, BATON_SERVER=server.base)
        subprocess.run([BATON, "deploy", str(ROOT / "examples" / "order" / "order.bpmn")], env=env, check=True, stdout=subprocess.DEVNULL)
        for _ in range(3):
            subprocess.run([BATON, "start", "order", "--var", "orderId=o-1", "--var", "amount=10"], env=env, check=True, stdout=subprocess.DEVNULL)
        schemathesis = Path(sys.executable).parent / "schemathesis"
        examples = os.environ.get("BATON_SCHEMATHESIS_EXAMPLES", "5")
        # hooks.py holds the check (Camunda's documented 504 for a wait that ran out is the one 5xx allowed).
        hooks = dict(os.environ, SCHEMATHESIS_HOOKS="hooks", PYTHONPATH=str(Path(__file__).resolve().parent))
        run = subprocess.run(
            [
                str(schemathesis), "run", f"{server.base}/v1/openapi.json",
                "--checks", "no_server_error",
                "--max-examples", examples,
                "--workers", "2",
                # Long polls may wait up to a minute, as the document says.
                "--request-timeout", "70",
                # A job stream answers for as long as the worker listens: a
                # request without a limit never ends, by design. The API's
                # tests read it line by line (crates/api/tests/api.rs).
                "--exclude-path", "/v1/jobs/stream",
                "--seed", os.environ.get("BATON_SCHEMATHESIS_SEED", "1"),
                "--no-color",
            ],
            env=hooks,
        )
        return run.returncode
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
