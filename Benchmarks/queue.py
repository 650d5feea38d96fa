#!/usr/bin/env python3
"""Claim/complete throughput of the resubmission queue with 8 concurrent workers over HTTP.

    python3 Benchmarks/queue.py [--jobs 2000] [--workers 8] [--bin .build/release/standby]

Starts a release Standby on loopback, registers the jobs on the primary hub, fails the hub over
with three failed reports (which queues one resubmission per job), then lets the workers claim
one item at a time and complete it. Prints items/s and the claim and complete latency medians.
"""
import argparse, datetime, http.client, json, os, statistics, subprocess, sys, tempfile, threading, time

parser = argparse.ArgumentParser()
parser.add_argument("--jobs", type=int, default=2000)
parser.add_argument("--workers", type=int, default=8)
parser.add_argument("--bin", default=".build/release/standby")
parser.add_argument("--port", type=int, default=18091)
args = parser.parse_args()

work = tempfile.mkdtemp()
config = os.path.join(work, "standby.yaml")
with open(config, "w") as f:
    f.write(f"""server: {{ host: 127.0.0.1, port: {args.port} }}
logging: {{ level: warning }}
database: {{ path: {work}/standby.sqlite }}
auth:
  webhookTokens: [bench]
  apiTokens:
    - {{ name: bench, token: bench-token-000001, roles: [admin] }}
deployments:
  - id: prod
    pattern: active-passive
    hubs:
      - {{ id: east, region: eastus, regionName: East US, role: primary }}
      - {{ id: west, region: westus, regionName: West US, role: secondary }}
""")
server = subprocess.Popen([args.bin, "serve", "--config", config], stderr=subprocess.DEVNULL)
HEADERS = {"Authorization": "Bearer bench-token-000001", "Content-Type": "application/json"}

def call(conn, method, path, body=None):
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=HEADERS)
    response = conn.getresponse()
    data = response.read()
    if response.status >= 300:
        raise RuntimeError(f"{method} {path}: {response.status} {data[:200]}")
    return json.loads(data) if data else None

try:
    for _ in range(100):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port)
            conn.request("GET", "/healthz"); conn.getresponse().read(); break
        except OSError:
            time.sleep(0.1)
    for i in range(args.jobs):
        call(conn, "POST", "/v1/jobs", {"externalId": f"job-{i}", "hub": "east", "spec": {"image": "trainer", "i": i}, "priority": i % 5})
    for _ in range(3):
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        call(conn, "POST", "/v1/health-reports", {"hub": "east", "source": "bench", "outcome": "failure", "observedAt": now})
        time.sleep(0.01)
    queued = call(conn, "GET", "/v1/resubmissions?status=queued&limit=1000")
    assert queued["items"], "the failover queued nothing"

    claims, completes, done = [], [], []
    lock = threading.Lock()

    def worker(name):
        c = http.client.HTTPConnection("127.0.0.1", args.port)
        while True:
            t0 = time.perf_counter()
            items = call(c, "POST", "/v1/resubmissions/claim", {"worker": name, "limit": 1, "leaseSeconds": 60})["items"]
            t1 = time.perf_counter()
            if not items:
                return
            item = items[0]
            call(c, "POST", f"/v1/resubmissions/{item['id']}/complete", {"worker": name, "newExternalId": f"re-{item['externalId']}"})
            t2 = time.perf_counter()
            with lock:
                claims.append(t1 - t0); completes.append(t2 - t1); done.append(item["id"])

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(args.workers)]
    for t in threads: t.start()
    for t in threads: t.join()
    elapsed = time.perf_counter() - started
    assert len(done) == len(set(done)) == args.jobs, f"{len(done)} completed, {len(set(done))} distinct, {args.jobs} expected"
    print(f"{args.jobs} resubmissions claimed and completed by {args.workers} workers in {elapsed:.2f} s: "
          f"{args.jobs / elapsed:.0f} items/s; claim p50 {statistics.median(claims) * 1000:.2f} ms, "
          f"complete p50 {statistics.median(completes) * 1000:.2f} ms; no item delivered twice")
finally:
    server.terminate(); server.wait()
