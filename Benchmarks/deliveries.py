#!/usr/bin/env python3
"""Sends a fixed number of webhook deliveries over kept-alive connections, the same requests as
webhook.lua (its template is read from that file, so there is one payload to keep up to date).

    python3 Benchmarks/deliveries.py PORT COUNT [CONNECTIONS]

Exits non-zero if any delivery is not answered with a 2xx. BENCH_PATH sends the same requests
elsewhere, as for webhook.lua (a route that does not exist measures the HTTP floor; any answer
counts then).
"""
import http.client, os, random, re, sys, threading

port, count = int(sys.argv[1]), int(sys.argv[2])
connections = int(sys.argv[3]) if len(sys.argv) > 3 else 16
lua = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "webhook.lua")).read()
template = re.search(r"local template = \[\[(.*?)\]\]", lua, re.S).group(1)
token = os.environ.get("STANDBY_WEBHOOK_TOKEN", "bench-webhook-token")
failures = []
path = os.environ.get("BENCH_PATH", "/webhooks/azure-monitor")

def send(worker, share):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    prefix = f"{worker}-{random.randint(1, 10**9)}"
    for n in range(1, share + 1):
        # The same substitutions as webhook.lua's request().
        body = template % (prefix, n, n % 50, n % 20, prefix, n)
        conn.request("POST", f"{path}?token={token}", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        if response.status >= 300 and "BENCH_PATH" not in os.environ:
            failures.append(response.status)

shares = [count // connections + (1 if i < count % connections else 0) for i in range(connections)]
threads = [threading.Thread(target=send, args=(i, share)) for i, share in enumerate(shares)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
if failures:
    sys.exit(f"{len(failures)} of {count} deliveries were not answered with a 2xx: {sorted(set(failures))}")
