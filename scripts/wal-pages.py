#!/usr/bin/env python3
"""Which tables and indexes the pages a commit writes belong to.

Runs `baton bench` (embedded, on SQLite, the file kept), copies the
write-ahead log a few times while the run is under way, and reads the page
number of every frame in each copy (the frames of the log's current
generation, up to the first that is not). Once the run is over, SQLite's
`dbstat` table says which b-tree owns each page. Prints, for each table and
index, the frames that went to it, its share of all of them, and the frames
per commit and per instance (from the run's commits per instance).

A page a table freed and another took later counts for the later owner:
the jobs table, whose rows are deleted as they complete, gives its pages
to others, so its share reads low and theirs high by as much.

    scripts/wal-pages.py BINARY [WORKLOAD] [INSTANCES]
    scripts/wal-pages.py target/release/baton w1 30000
"""
import collections
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time


def frames(path: str):
    """(page number, is a commit) of each frame of the log's current generation."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 32:
        return
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">IIIIIIII", data[:32])
    offset = 32
    while offset + 24 + page_size <= len(data):
        page, commit, s1, s2, _k1, _k2 = struct.unpack(">IIIIII", data[offset:offset + 24])
        if (s1, s2) != (salt1, salt2):
            return
        yield page, commit != 0
        offset += 24 + page_size


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    workload = sys.argv[2] if len(sys.argv) > 2 else "w1"
    instances = sys.argv[3] if len(sys.argv) > 3 else "30000"
    with tempfile.TemporaryDirectory(prefix="baton-wal-pages-") as folder:
        run = subprocess.Popen(
            [binary, "bench", "--workload", workload, "--store", "sqlite", "--mode", "embedded",
             "--instances", instances, "--keep", folder, "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        log = os.path.join(folder, "bench.db-wal")
        copies = []
        # Copies spread over the run, after its start-up.
        time.sleep(1.0)
        while run.poll() is None and len(copies) < 5:
            copy = os.path.join(folder, f"copy-{len(copies)}")
            try:
                shutil.copyfile(log, copy)
                copies.append(copy)
            except FileNotFoundError:
                pass
            time.sleep(0.3)
        report = json.loads(run.stdout.read())
        if run.wait() != 0:
            sys.exit(f"the bench failed (exit {run.returncode})")
        commits_per_instance = report["database"]["commits"]
        database = sqlite3.connect(os.path.join(folder, "bench.db"))
        owner = dict((page, name) for name, page in database.execute("SELECT name, pageno FROM dbstat"))
        shares = collections.Counter()
        commits = 0
        for copy in copies:
            for page, commit in frames(copy):
                shares[owner.get(page, "(free or new)")] += 1
                commits += commit
    total = sum(shares.values())
    if not total or not commits:
        sys.exit("no committed frames were seen: run more instances")
    per_instance = commits_per_instance / commits
    print(f"{total} frames in {commits} commits: {total / commits:.1f} pages per commit, "
          f"{1 / commits_per_instance:.1f} instances per commit, {total * per_instance:.2f} pages per instance")
    for name, count in shares.most_common():
        print(f"{name:32} {count:7} {100 * count / total:5.1f} %  {count / commits:6.1f} per commit"
              f"  {count * per_instance:5.2f} per instance")


if __name__ == "__main__":
    main()
