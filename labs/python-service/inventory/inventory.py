"""The inventory service: item details by id, one query per request.

Python 3.11 standard library only. Each lookup costs QUERY_MS milliseconds, as a database query
over the network would; the batch route answers many ids for the price of one query.

    GET /items/<id>          one item                     (one query)
    GET /items?ids=1,2,3     several items in one answer  (one query)
    GET /health              {"status": "ok", ...}
    GET /stats               {"requests": {"item": n, "batch": m}, "itemsQueried": k}
    GET /metrics             Prometheus text: inventory_requests_total{route=...}, ...
"""

import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

PORT = int(os.environ.get("PORT", "7000"))
HOST = os.environ.get("HOST", "0.0.0.0")
QUERY_MS = float(os.environ.get("QUERY_MS", "20"))
ITEM_COUNT = 50
STARTED = time.time()

ITEMS = {
    i: {
        "id": i,
        "name": f"item-{i:03d}",
        "priceCents": 199 + (i * 37) % 900,
        "stock": (i * 13) % 40,
    }
    for i in range(1, ITEM_COUNT + 1)
}

_lock = threading.Lock()
_requests = {"item": 0, "batch": 0}
_queried_ids = 0


def log(message):
    print(f"inventory: {message}", flush=True)


def query(ids):
    """One round trip to the (simulated) database, whatever the number of ids."""
    global _queried_ids
    time.sleep(QUERY_MS / 1000)
    with _lock:
        _queried_ids += len(ids)
    return [ITEMS[i] for i in ids if i in ITEMS]


def count(route):
    with _lock:
        _requests[route] += 1


def metrics_text():
    with _lock:
        requests = dict(_requests)
        queried = _queried_ids
    lines = [
        "# HELP inventory_requests_total Requests answered, by route.",
        "# TYPE inventory_requests_total counter",
    ]
    for route, value in requests.items():
        lines.append(f'inventory_requests_total{{route="{route}"}} {value}')
    lines += [
        "# HELP inventory_items_queried_total Item ids looked up.",
        "# TYPE inventory_items_queried_total counter",
        f"inventory_items_queried_total {queried}",
        "# HELP inventory_query_seconds What one query costs.",
        "# TYPE inventory_query_seconds gauge",
        f"inventory_query_seconds {QUERY_MS / 1000}",
    ]
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    server_version = "inventory/1"
    protocol_version = "HTTP/1.1"

    def send(self, status, body, content_type="application/json"):
        data = body.encode() if isinstance(body, str) else (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        started = time.perf_counter()
        url = urlsplit(self.path)
        status = 200
        if url.path == "/health":
            self.send(200, {"status": "ok", "pid": os.getpid(), "items": len(ITEMS),
                            "uptimeSeconds": round(time.time() - STARTED, 3)})
        elif url.path == "/metrics":
            self.send(200, metrics_text(), "text/plain; version=0.0.4")
        elif url.path == "/stats":
            with _lock:
                stats = {"requests": dict(_requests), "itemsQueried": _queried_ids}
            self.send(200, stats)
        elif url.path == "/items":
            ids = parse_ids(parse_qs(url.query).get("ids", [""])[0])
            if ids is None:
                status = 400
                self.send(400, {"error": "ids must be comma-separated integers"})
            else:
                count("batch")
                self.send(200, {"items": query(ids)})
        elif url.path.startswith("/items/") and url.path[len("/items/"):].isdigit():
            count("item")
            found = query([int(url.path[len("/items/"):])])
            status = 200 if found else 404
            self.send(status, found[0] if found else {"error": "not_found"})
        else:
            status = 404
            self.send(404, {"error": "not_found"})
        if url.path not in ("/health", "/metrics", "/stats"):
            log(f"GET {self.path} {status} {(time.perf_counter() - started) * 1000:.0f}ms")

    def log_message(self, format, *args):
        pass  # one line per request is written by do_GET


def parse_ids(text):
    try:
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        return None


def main():
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        log(f"signal {signum}: shutting down")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log(f"listening on :{PORT} ({len(ITEMS)} items, {QUERY_MS:g} ms per query)")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
