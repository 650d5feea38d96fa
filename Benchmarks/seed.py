#!/usr/bin/env python3
"""Fills a Standby SQLite database with N webhook deliveries as ingest writes them, for measuring
the per-delivery cost on a large database (`SEED=PATH Benchmarks/instructions.sh`).

    python3 Benchmarks/seed.py PATH COUNT [--bin path/to/standby]

Each delivery gets its row (a 1.7 KB body), a new alert with its hub row, and the two chained
history events (`delivery.received`, `alert.created`), dated over the 30 days before now with
time-ordered (UUID v7) ids, so that new deliveries land at the end of every index as they do in
production. The chain is valid (plain SHA-256, the rule Standby uses), so the server starts on it.
"""
import argparse, hashlib, json, os, random, sqlite3, subprocess, tempfile, time

parser = argparse.ArgumentParser()
parser.add_argument("path")
parser.add_argument("count", type=int)
parser.add_argument("--bin", default=os.environ.get("BIN", ".build/release/standby"))
args = parser.parse_args()

DEPLOYMENT, HUB = "foundry-prod", "eastus-hub"
SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"


def canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def uuid7(milliseconds):
    high = (milliseconds << 16) | 0x7000 | random.getrandbits(12)
    low = random.getrandbits(62) | (1 << 63)
    text = f"{high:016x}{low:016x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def stamp(milliseconds):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(milliseconds // 1000)) + f".{milliseconds % 1000:03d}Z"


with tempfile.TemporaryDirectory() as work:
    config = os.path.join(work, "standby.yaml")
    with open(config, "w") as f:
        f.write(f"database: {{ path: {os.path.abspath(args.path)} }}\n")
    subprocess.run([args.bin, "migrate", "--config", config], check=True, stdout=subprocess.DEVNULL)

db = sqlite3.connect(args.path)
db.execute("PRAGMA synchronous = OFF")
head = db.execute("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1").fetchone()
seq, prev = head if head else (0, "0" * 64)
start = int(time.time() * 1000) - 30 * 86_400_000
step = max(1, 30 * 86_400_000 // max(1, args.count))
hubs = canonical([{"deploymentId": DEPLOYMENT, "hubId": HUB}])
body_pad = "x" * 1200
deliveries, alerts, alert_hubs, events = [], [], [], []


def flush():
    db.executemany("INSERT INTO deliveries (id, received_at, remote_address, content_type, body, sha256, byte_count, "
                   "outcome, schema, alert_id, detail) VALUES (?,?,?,?,?,?,?,?,?,?,?)", deliveries)
    db.executemany("INSERT INTO alerts (id, alert_key, status, azure_alert_id, rule, severity, signal_type, "
                   "monitoring_service, schema, kind, condition, target_ids, hubs, fired_at, observed_at, "
                   "description, state_fingerprint, first_delivery_id, last_delivery_id, created_at, updated_at) "
                   "VALUES (?,?,'recognized',?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", alerts)
    db.executemany("INSERT INTO alert_hubs (alert_id, deployment_id, hub_id) VALUES (?,?,?)", alert_hubs)
    db.executemany("INSERT INTO events (seq, at, type, deployment_id, hub, actor, data, prev_hash, hash) "
                   "VALUES (?,?,?,?,?,?,?,?,?)", events)
    for rows in (deliveries, alerts, alert_hubs, events):
        rows.clear()
    # A commit per chunk lets SQLite checkpoint the WAL as it goes; one transaction for all of it
    # would grow the WAL to the size of the database, then copy it again.
    db.commit()


started = time.perf_counter()
for n in range(args.count):
    ms = start + n * step
    at = stamp(ms)
    delivery_id, alert_id = uuid7(ms), uuid7(ms)
    azure_id = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/seed-{n}"
    body = json.dumps({"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertId": azure_id, "alertRule": f"hub-latency-{n % 50}", "monitorCondition": "Fired"}}, "pad": body_pad})
    sha = hashlib.sha256(body.encode()).hexdigest()
    deliveries.append((delivery_id, at, "127.0.0.1", "application/json", body.encode(), sha, len(body), "new",
                       "azureMonitorCommonAlertSchema", alert_id, None))
    target = (f"/subscriptions/{SUBSCRIPTION}/resourcegroups/ai-eastus/providers/"
              f"microsoft.machinelearningservices/workspaces/hub-eastus/onlineendpoints/chat-{n % 20}")
    alerts.append((alert_id, f"azure:{azure_id}", azure_id, f"hub-latency-{n % 50}", "Sev3", "Metric", "Platform",
                   "azureMonitorCommonAlertSchema", "metric", "fired", canonical([target]), hubs, at, at,
                   "Request latency above threshold", hashlib.sha256(f"fired:{n}".encode()).hexdigest(),
                   delivery_id, delivery_id, at, at))
    alert_hubs.append((alert_id, DEPLOYMENT, HUB))
    for kind, data, deployment, hub in (
        ("delivery.received", {"deliveryId": delivery_id, "alertId": alert_id, "outcome": "new", "sha256": sha,
                               "bytes": len(body), "remoteAddress": "127.0.0.1"}, None, None),
        ("alert.created", {"alertId": alert_id, "key": f"azure:{azure_id}", "rule": f"hub-latency-{n % 50}",
                           "kind": "metric", "condition": "fired"}, DEPLOYMENT, HUB),
    ):
        seq += 1
        event = {"seq": seq, "at": at, "type": kind, "deploymentId": deployment, "hub": hub,
                 "actor": "azure-monitor", "data": data}
        digest = hashlib.sha256(prev.encode() + canonical(event).encode()).hexdigest()
        events.append((seq, at, kind, deployment, hub, "azure-monitor", canonical(data), prev, digest))
        prev = digest
    if len(deliveries) == 20_000:
        flush()
flush()
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
db.close()
print(f"{args.count} deliveries written to {args.path} in {time.perf_counter() - started:.0f} s "
      f"({os.path.getsize(args.path) / 1e9:.1f} GB)")
