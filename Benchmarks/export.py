#!/usr/bin/env python3
"""Time and peak memory of `standby export` as the history grows (memory must stay flat).

    python3 Benchmarks/export.py [--counts 100000,1000000] [--bin .build/release/standby]

Fills a database with N realistic events (a valid hash chain, written by this script with the
same rule Standby uses), then exports it as NDJSON to a file and verifies the file.
"""
import argparse, hashlib, json, os, resource, sqlite3, subprocess, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("--counts", default="100000,1000000")
parser.add_argument("--bin", default=".build/release/standby")
args = parser.parse_args()

def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

def run(count):
    work = tempfile.mkdtemp()
    config = os.path.join(work, "standby.yaml")
    with open(config, "w") as f:
        f.write(f"database: {{ path: {work}/standby.sqlite }}\n")
    subprocess.run([args.bin, "migrate", "--config", config], check=True, stdout=subprocess.DEVNULL)
    db = sqlite3.connect(f"{work}/standby.sqlite")
    prev = "0" * 64
    rows = []
    for seq in range(1, count + 1):
        at = f"2026-11-{1 + seq // 100000:02d}T{(seq // 3600) % 24:02d}:{(seq // 60) % 60:02d}:{seq % 60:02d}.000Z"
        data = {"deliveryId": f"d-{seq}", "alertId": f"a-{seq % 977}", "outcome": "new", "bytes": 1800 + seq % 400,
                "sha256": hashlib.sha256(str(seq).encode()).hexdigest()}
        event = {"seq": seq, "at": at, "type": "delivery.received", "deploymentId": None, "hub": None,
                 "actor": "azure-monitor", "data": data}
        digest = hashlib.sha256(prev.encode() + canonical(event).encode()).hexdigest()
        rows.append((seq, at, "delivery.received", None, None, "azure-monitor", canonical(data), prev, digest))
        prev = digest
        if len(rows) == 50000:
            db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows); rows = []
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
    db.commit(); db.close()
    out = os.path.join(work, "events.ndjson")
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    subprocess.run([args.bin, "export", "--config", config, "--format", "ndjson", "--output", out], check=True,
                   stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    size = os.path.getsize(out)
    verify = subprocess.run([args.bin, "audit", "verify", out], capture_output=True, text=True)
    print(f"{count:>9} events: export {elapsed:.2f} s ({count / elapsed:,.0f} events/s, {size / 1e6:.0f} MB), "
          f"peak RSS of the child so far {peak / 1024:.0f} MB; verify: {verify.stdout.strip() or verify.stderr.strip()}")

for count in [int(c) for c in args.counts.split(",")]:
    run(count)
