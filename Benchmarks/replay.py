#!/usr/bin/env python3
"""Time and peak memory of `standby replay` as the recorded history grows (memory must stay flat).

    python3 Benchmarks/replay.py [--counts 100000,1000000] [--bin path/to/standby]

Without --bin, the current source is built as it ships (scripts/build-release.sh).

For each count N, a fresh server (SQLite, synchronous=full) takes N health reports through
`POST /v1/health-reports` in batches of 1000, spread over the 6 hours before now across four
deployments. Each deployment's primary fails three times in a row once, which fails it over
(the window and staleAfter are 12h, so that the few reports of a short history still count).
The server is then stopped, and `standby replay --format json` runs on its database under
`/usr/bin/time -v`. The script prints the replay's wall time, its maximum RSS, and the decisions
recorded, replayed and different. With the live policy, there must be no difference.
"""
import argparse, datetime, json, os, re, socket, subprocess, sys, tempfile, time, urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--counts", default="100000,1000000")
parser.add_argument("--bin")
args = parser.parse_args()
if not args.bin:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args.bin = subprocess.run([os.path.join(root, "scripts/build-release.sh")], check=True,
                              capture_output=True, text=True).stdout.strip().splitlines()[-1]

DEPLOYMENTS = 4
TOKEN = "bench-api-token-01"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(work, port):
    lines = [
        f"server: {{ host: 127.0.0.1, port: {port} }}",
        "logging: { level: warning }",
        f"database: {{ path: {work}/standby.sqlite, synchronous: full }}",
        "auth:",
        "  apiTokens:",
        '    - { name: bench, token: "${STANDBY_API_TOKEN}", roles: [admin] }',
        "deployments:",
    ]
    for d in range(DEPLOYMENTS):
        lines += [
            f"  - id: replay-{d}",
            "    pattern: active-passive",
            "    hubs:",
            f"      - {{ id: primary-{d}, region: eastus, regionName: East US, role: primary }}",
            f"      - {{ id: secondary-{d}, region: westus, regionName: West US, role: secondary }}",
            # Wide enough that a short history's sparse reports still make three in a row.
            "    policy: { window: 12h, staleAfter: 12h }",
        ]
    path = os.path.join(work, "standby.yaml")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def post(port, reports):
    body = json.dumps({"reports": reports}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/health-reports", data=body, method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    for attempt in range(20):
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
                return
        except urllib.error.HTTPError as error:
            if error.code != 503:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise RuntimeError("the server kept answering 503")


def fill(port, count):
    # Reports older than the policy's staleAfter (12h at most is allowed) would say nothing.
    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=6)
    step = datetime.timedelta(hours=6) / count
    # One failure burst per deployment, at its own point of the month.
    bursts = {int(count * (d + 1) / (DEPLOYMENTS + 1)): d for d in range(DEPLOYMENTS)}
    batch, failing = [], {}
    for i in range(count):
        if i in bursts:
            failing[bursts[i]] = 3
        hubs = [f"secondary-{d}" if i % 2 else f"primary-{d}" for d in range(DEPLOYMENTS)]
        hub = hubs[(i // 2) % DEPLOYMENTS]
        deployment = int(hub.split("-")[1])
        outcome = "success"
        if hub.startswith("primary") and failing.get(deployment, 0) > 0:
            outcome = "failure"
            failing[deployment] -= 1
        at = start + step * i
        batch.append({
            "hub": hub, "source": "probe-bench", "outcome": outcome,
            "observedAt": at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z",
            "latencyMs": 40 + i % 60, "statusCode": 503 if outcome == "failure" else 200,
            "detail": "timeout" if outcome == "failure" else "ok",
        })
        if len(batch) == 1000:
            post(port, batch)
            batch = []
    if batch:
        post(port, batch)


def run(count):
    work = tempfile.mkdtemp()
    port = free_port()
    path = config(work, port)
    env = dict(os.environ, STANDBY_API_TOKEN=TOKEN)
    server = subprocess.Popen([args.bin, "serve", "--config", path], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "serve.log"), "w"))
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        began = time.monotonic()
        fill(port, count)
        print(f"{count} reports recorded in {time.monotonic() - began:.0f} s", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=60)
    began = time.monotonic()
    replay = subprocess.run(
        ["/usr/bin/time", "-v", args.bin, "replay", "--config", path, "--format", "json"],
        env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - began
    if replay.returncode != 0:
        sys.exit(f"replay failed:\n{replay.stderr[-4000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", replay.stderr).group(1))
    report = json.loads(replay.stdout)
    recorded = sum(len(d["recorded"]) for d in report["deployments"])
    replayed = sum(len(d["replayed"]) for d in report["deployments"])
    differences = sum(len(d["differences"]) for d in report["deployments"])
    print(f"{count:>9} signals: replay {elapsed:.0f} s, max RSS {rss / 1024:.0f} MB, "
          f"decisions recorded {recorded}, replayed {replayed}, differences {differences}")
    subprocess.run(["rm", "-rf", work])


for count in [int(c) for c in args.counts.split(",")]:
    run(count)
