"""A `baton serve` on a fresh SQLite file in a temporary folder, for the client tests.

BATON_BIN names the binary (scripts/test passes the release build).
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

BATON = os.environ.get("BATON_BIN") or str(Path(__file__).resolve().parent.parent / "target" / "release" / "baton")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BatonServer:
    """Started on construction; `base` is its REST address, `work` its folder (removed by `stop`), `grpc_port` set when asked for."""

    def __init__(self, prefix: str, grpc: bool = False):
        self.work = tempfile.mkdtemp(prefix=prefix)
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        arguments = [BATON, "serve", "--db", f"sqlite://{self.work}/baton.db", "--listen", f"127.0.0.1:{port}"]
        self.grpc_port = free_port() if grpc else None
        if self.grpc_port:
            arguments += ["--grpc-listen", f"127.0.0.1:{self.grpc_port}"]
        self.process = subprocess.Popen(arguments, stdout=subprocess.DEVNULL)
        for _ in range(300):
            try:
                with urllib.request.urlopen(f"{self.base}/healthz") as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("baton serve did not come up")

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        shutil.rmtree(self.work, ignore_errors=True)
