"""Prometheus text exposition with prometheus_client's default metric names, standard library only.

process_* and python_* are what prometheus_client's default collectors emit, so dashboards built
for them work; http_request_duration_seconds is the usual latency histogram, by route.
"""

import gc
import os
import platform
import threading
import time

STARTED = time.time()
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class Counter:
    def __init__(self, name, help_text, label):
        self.name, self.help, self.label = name, help_text, label
        self.values = {}
        self.lock = threading.Lock()

    def inc(self, **labels):
        key = labels[self.label]
        with self.lock:
            self.values[key] = self.values.get(key, 0) + 1

    def lines(self):
        with self.lock:
            values = sorted(self.values.items())
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} counter"
        for key, value in values:
            yield f'{self.name}{{{self.label}="{key}"}} {value}'


class Gauge:
    def __init__(self, name, help_text):
        self.name, self.help, self.value = name, help_text, 0

    def set(self, value):
        self.value = value

    def lines(self):
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} gauge"
        yield f"{self.name} {self.value}"


class Histogram:
    BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

    def __init__(self, name, help_text, label):
        self.name, self.help, self.label = name, help_text, label
        self.series = {}  # label value -> [bucket counts..., sum, count]
        self.lock = threading.Lock()

    def observe(self, seconds, **labels):
        key = labels[self.label]
        with self.lock:
            series = self.series.setdefault(key, [0] * len(self.BUCKETS) + [0.0, 0])
            for i, bound in enumerate(self.BUCKETS):
                if seconds <= bound:
                    series[i] += 1
            series[-2] += seconds
            series[-1] += 1

    def lines(self):
        with self.lock:
            series = {key: list(values) for key, values in sorted(self.series.items())}
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} histogram"
        for key, values in series.items():
            label = f'{self.label}="{key}"'
            for bound, count in zip(self.BUCKETS, values):
                yield f'{self.name}_bucket{{{label},le="{bound}"}} {count}'
            yield f'{self.name}_bucket{{{label},le="+Inf"}} {values[-1]}'
            yield f"{self.name}_sum{{{label}}} {values[-2]:.6f}"
            yield f"{self.name}_count{{{label}}} {values[-1]}"


REQUESTS = Histogram("http_request_duration_seconds", "Time to answer a request, by route.", "route")
INVENTORY_CALLS = Counter("app_inventory_requests_total", "Requests sent to the inventory service, by its route.", "route")
REPORT_CACHE_ENTRIES = Gauge("app_report_cache_entries", "Rendered reports kept in the report cache.")
TRACEMALLOC_TRACED = Gauge("app_tracemalloc_traced_bytes", "Memory traced by tracemalloc (0 when it is not tracing).")


def _process_lines():
    with open("/proc/self/statm") as statm:
        virtual_pages, resident_pages = (int(v) for v in statm.read().split()[:2])
    times = os.times()
    yield "# HELP process_resident_memory_bytes Resident memory size in bytes."
    yield "# TYPE process_resident_memory_bytes gauge"
    yield f"process_resident_memory_bytes {resident_pages * _PAGE_SIZE}"
    yield "# HELP process_virtual_memory_bytes Virtual memory size in bytes."
    yield "# TYPE process_virtual_memory_bytes gauge"
    yield f"process_virtual_memory_bytes {virtual_pages * _PAGE_SIZE}"
    yield "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
    yield "# TYPE process_cpu_seconds_total counter"
    yield f"process_cpu_seconds_total {times.user + times.system:.2f}"
    yield "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds."
    yield "# TYPE process_start_time_seconds gauge"
    yield f"process_start_time_seconds {STARTED:.2f}"
    yield "# HELP process_open_fds Number of open file descriptors."
    yield "# TYPE process_open_fds gauge"
    yield f"process_open_fds {len(os.listdir('/proc/self/fd'))}"


def _python_lines():
    major, minor, patch = platform.python_version_tuple()
    yield "# HELP python_info Python platform information"
    yield "# TYPE python_info gauge"
    yield (f'python_info{{implementation="{platform.python_implementation()}",major="{major}",'
           f'minor="{minor}",patchlevel="{patch}",version="{platform.python_version()}"}} 1.0')
    stats = gc.get_stats()
    yield "# HELP python_gc_objects_collected_total Objects collected during gc"
    yield "# TYPE python_gc_objects_collected_total counter"
    for generation, stat in enumerate(stats):
        yield f'python_gc_objects_collected_total{{generation="{generation}"}} {stat["collected"]}'
    yield "# HELP python_gc_collections_total Number of times this generation was collected"
    yield "# TYPE python_gc_collections_total counter"
    for generation, stat in enumerate(stats):
        yield f'python_gc_collections_total{{generation="{generation}"}} {stat["collections"]}'


def exposition():
    lines = [*_process_lines(), *_python_lines()]
    for metric in (REQUESTS, INVENTORY_CALLS, REPORT_CACHE_ENTRIES, TRACEMALLOC_TRACED):
        lines.extend(metric.lines())
    return "\n".join(lines) + "\n"
