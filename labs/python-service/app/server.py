"""The shop's API: orders with their items' details from the inventory service.

Python 3.11 standard library only: http.server answers each request on a thread of its own.

    GET  /health                      {"status": "ok", "pid": ..., "uptimeSeconds": ...}
    GET  /metrics                     Prometheus text (prometheus_client's default names)
    GET  /api/items/<id>              one item, from the inventory
    GET  /api/orders                  the recent orders, each line with its item's details
    GET  /api/orders/<id>             one order
    GET  /api/orders/<id>/report      the order as a text report (cached)

    The debug routes (debug.py: off by default, token-guarded):
    GET  /debug/status
    POST /debug/profile?seconds=N     profiles the requests answered in the next N seconds;
                                      answers the merged cProfile stats (a pstats file)
    POST /debug/tracemalloc/start?frames=N
    POST /debug/tracemalloc/snapshot  answers a tracemalloc.Snapshot (Snapshot.load reads it)
    POST /debug/tracemalloc/stop
"""

import json
import os
import re
import signal
import sys
import threading
import time
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import config
import debug
import inventory_client
import metrics
import orders
import reports

ORDERS = re.compile(r"^/api/orders$")
ORDER = re.compile(r"^/api/orders/(\d+)$")
REPORT = re.compile(r"^/api/orders/(\d+)/report$")
ITEM = re.compile(r"^/api/items/(\d+)$")


def log(message):
    print(f"api: {message}", flush=True)


class Answer:
    def __init__(self, status, body, content_type="application/json", headers=None):
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}

    def encoded(self):
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return (json.dumps(self.body) + "\n").encode()


def api_route(path):
    """The route template of a path, the function that answers it and the path's match
    (None, None, None: no such route)."""
    for pattern, route, answer in (
        (ORDERS, "/api/orders", all_orders),
        (ORDER, "/api/orders/{id}", one_order),
        (REPORT, "/api/orders/{id}/report", order_report),
        (ITEM, "/api/items/{id}", one_item),
    ):
        match = pattern.match(path)
        if match:
            return route, answer, match
    return None, None, None


def all_orders(match, url):
    return Answer(200, orders.list_orders())


def one_order(match, url):
    order = orders.get_order(int(match.group(1)))
    return Answer(200, order) if order else Answer(404, {"error": "not_found"})


def order_report(match, url):
    path = url.path + ("?" + url.query if url.query else "")
    text = reports.report(path, int(match.group(1)))
    return Answer(200, text, "text/plain; charset=utf-8") if text else Answer(404, {"error": "not_found"})


def one_item(match, url):
    return Answer(200, inventory_client.fetch_item(int(match.group(1))))


def debug_answer(method, url, headers):
    refused = debug.refusal(headers)
    if refused:
        return Answer(*refused)
    query = parse_qs(url.query)
    route = (method, url.path)
    if route == ("GET", "/debug/status"):
        return Answer(200, {"debugEndpoints": True, "pid": os.getpid(), "profiling": debug.profiling(),
                            "tracemalloc": debug.tracemalloc_state(),
                            "reportCacheEntries": reports.cache_entries(),
                            "reportCacheMax": config.REPORT_CACHE_MAX,
                            "inventoryBatch": config.INVENTORY_BATCH})
    if route == ("POST", "/debug/profile"):
        seconds = number(query, "seconds", 5)
        if seconds is None or not 0 < seconds <= debug.MAX_PROFILE_SECONDS:
            return Answer(400, {"error": f"seconds must be a number in (0, {debug.MAX_PROFILE_SECONDS}]"})
        try:
            stats, requests = debug.profile_window(seconds)
        except debug.Busy:
            return Answer(409, {"error": "profile_running", "detail": "one profiling window at a time"})
        log(f"profiled {requests} requests in {seconds:g} s")
        return Answer(200, stats, "application/octet-stream", {"x-profiled-requests": str(requests)})
    if route == ("POST", "/debug/tracemalloc/start"):
        frames = number(query, "frames", 1)
        if frames is None or frames != int(frames) or not 1 <= frames <= 25:
            return Answer(400, {"error": "frames must be an integer from 1 to 25"})
        return Answer(200, debug.tracemalloc_start(int(frames)))
    if route == ("POST", "/debug/tracemalloc/snapshot"):
        if not tracemalloc.is_tracing():
            return Answer(409, {"error": "not_tracing", "detail": "POST /debug/tracemalloc/start first"})
        return Answer(200, debug.tracemalloc_snapshot(), "application/octet-stream")
    if route == ("POST", "/debug/tracemalloc/stop"):
        return Answer(200, debug.tracemalloc_stop())
    return Answer(404, {"error": "not_found"})


def number(query, name, default):
    try:
        return float(query[name][0]) if name in query else default
    except ValueError:
        return None


class Handler(BaseHTTPRequestHandler):
    server_version = "shop-api/1"
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        started = time.perf_counter()
        url = urlsplit(self.path)
        route = url.path
        headers = {name.lower(): value for name, value in self.headers.items()}
        if url.path == "/health":
            answer = Answer(200, {"status": "ok", "pid": os.getpid(),
                                  "uptimeSeconds": round(time.time() - metrics.STARTED, 3)})
        elif url.path == "/metrics":
            metrics.TRACEMALLOC_TRACED.set(tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0)
            answer = Answer(200, metrics.exposition(), "text/plain; version=0.0.4")
        elif url.path.startswith("/debug/"):
            route = "/debug"
            answer = debug_answer(method, url, headers)
        else:
            route, handle, match = api_route(url.path) if method == "GET" else (None, None, None)
            if handle is None:
                route, answer = "other", Answer(404, {"error": "not_found"})
            else:
                try:
                    answer = debug.profiled(handle, match, url)
                except OSError as error:  # urllib's HTTPError, URLError and timeouts are OSErrors
                    log(f"{method} {self.path}: the inventory failed: {error}")
                    answer = Answer(502, {"error": "inventory_unavailable", "detail": str(error)})
                except Exception as error:
                    log(f"{method} {self.path} failed: {error!r}")
                    answer = Answer(500, {"error": "internal", "detail": repr(error)})
        self.send(answer)
        elapsed = time.perf_counter() - started
        metrics.REQUESTS.observe(elapsed, route=route)
        if url.path not in ("/health", "/metrics"):
            log(f"{method} {self.path} {answer.status} {elapsed * 1000:.0f}ms")

    def send(self, answer):
        data = answer.encoded()
        self.send_response(answer.status)
        self.send_header("content-type", answer.content_type)
        self.send_header("content-length", str(len(data)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format, *args):
        pass  # dispatch writes one line per request


def main():
    server = ThreadingHTTPServer((config.HOST, config.PORT), Handler)
    server.daemon_threads = True

    def stop(signum, frame):
        log(f"signal {signum}: shutting down")
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    state = "on" if config.DEBUG_ENDPOINTS else "off"
    log(f"listening on :{config.PORT}; inventory at {config.INVENTORY_URL}; debug routes {state}")
    server.serve_forever()
    server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
