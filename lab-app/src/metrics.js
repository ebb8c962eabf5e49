// GET /api/metrics: prom-client's default metrics (same names, HELP texts, types and buckets, so
// existing dashboards work), the lab's own gauges and counters, and a request-duration histogram.
import { readFileSync, readdirSync } from 'node:fs';
import { constants as perfConstants, PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { Histogram, renderFamily } from './exposition.js';
import { longestLoopDelaySeconds, takeLoopDelayWindow } from './loop-delay.js';
import { eventLoopJamsTotal, lastEventLoopJamSeconds } from './lab/event-loop-jam.js';
import { retainedStats } from './lab/memory.js';
import { heapSnapshotInProgress, heapSnapshotsTotal } from './lab/heap-snapshot.js';
import { cpuProfileInProgress } from './lab/cpu-profile.js';

const LINUX = process.platform === 'linux';
const START_TIME_SECONDS = Math.round(Date.now() / 1000 - process.uptime());
const [MAJOR, MINOR, PATCH] = process.version.slice(1).split('.');

// --- garbage collection, by kind, in prom-client's buckets.
const GC_KINDS = {
  [perfConstants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [perfConstants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [perfConstants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [perfConstants.NODE_PERFORMANCE_GC_WEAKCB]: 'weakcb',
};
const gcDuration = new Histogram(['kind'], [0.001, 0.01, 0.1, 1, 2, 5]);
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcDuration.observe({ kind: GC_KINDS[entry.detail?.kind] ?? 'unknown' }, entry.duration / 1000);
  }
}).observe({ entryTypes: ['gc'] });

// --- HTTP requests, in prom-client's default histogram buckets. `route` is the route pattern, or
// "unmatched" for anything answered 404, so arbitrary paths cannot create new series.
const httpRequestDuration = new Histogram(
  ['method', 'route', 'status'],
  [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
);

export function observeHttpRequest(method, route, status, seconds) {
  httpRequestDuration.observe({ method, route, status: String(status) }, seconds);
}

function gauge(name, help, value, labels) {
  return { name, help, type: 'gauge', samples: [{ labels, value }] };
}

function counter(name, help, value) {
  return { name, help, type: 'counter', samples: [{ value }] };
}

function countBy(names) {
  const counts = new Map();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  return [...counts].map(([type, value]) => ({ labels: { type }, value }));
}

function constructorNames(list) {
  return list.filter((item) => item?.constructor).map((item) => item.constructor.name);
}

// prom-client's osMemoryHeapLinux: VmRSS, VmSize and VmData from /proc/self/status, in bytes.
function procStatusBytes() {
  try {
    const fields = {};
    for (const line of readFileSync('/proc/self/status', 'utf8').split('\n')) {
      const match = /^(VmRSS|VmSize|VmData):\s+(\d+) kB$/.exec(line);
      if (match) fields[match[1]] = Number(match[2]) * 1024;
    }
    return fields;
  } catch {
    return {};
  }
}

function readMaxFds() {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
    const soft = Number(line?.split(/ {2,}/)[1]);
    return Number.isFinite(soft) ? soft : undefined;
  } catch {
    return undefined;
  }
}
const MAX_FDS = LINUX ? readMaxFds() : undefined;

function processFamilies() {
  const families = [];
  const cpu = process.cpuUsage();
  families.push(
    counter('process_cpu_user_seconds_total', 'Total user CPU time spent in seconds.', cpu.user / 1e6),
    counter('process_cpu_system_seconds_total', 'Total system CPU time spent in seconds.', cpu.system / 1e6),
    counter(
      'process_cpu_seconds_total',
      'Total user and system CPU time spent in seconds.',
      (cpu.user + cpu.system) / 1e6,
    ),
    gauge('process_start_time_seconds', 'Start time of the process since unix epoch in seconds.', START_TIME_SECONDS),
  );

  if (LINUX) {
    const status = procStatusBytes();
    if (status.VmRSS !== undefined) {
      families.push(
        gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', status.VmRSS),
        gauge('process_virtual_memory_bytes', 'Virtual memory size in bytes.', status.VmSize),
        gauge('process_heap_bytes', 'Process heap size in bytes.', status.VmData),
      );
    }
    try {
      // minus one: the directory handle readdirSync itself holds while listing
      const openFds = readdirSync('/proc/self/fd').length - 1;
      families.push(gauge('process_open_fds', 'Number of open file descriptors.', openFds));
    } catch {
      // /proc not mounted: omitted, as prom-client does
    }
    if (MAX_FDS !== undefined) {
      families.push(gauge('process_max_fds', 'Maximum number of open file descriptors.', MAX_FDS));
    }
  } else {
    families.push(gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', process.memoryUsage.rss()));
  }
  return families;
}

// How long a setImmediate callback waits right now, as prom-client measures nodejs_eventloop_lag_seconds
// (but awaited, so the value is this scrape's rather than the previous one's).
function measureLagSeconds() {
  const start = process.hrtime.bigint();
  return new Promise((resolve) => {
    setImmediate(() => resolve(Number(process.hrtime.bigint() - start) / 1e9));
  });
}

// nodejs_eventloop_lag_{min,max,...}_seconds describe the delays since the previous scrape
// (see loop-delay.js), so lag max after a jam is the jam's length.
function eventLoopFamilies(lagSeconds) {
  const loopDelay = takeLoopDelayWindow();
  // A window can be empty (two scrapes within one 10 ms tick): then min would be 2^63 ns and
  // mean/stddev NaN. Report 0 instead: no delay was recorded since the last scrape.
  const empty = loopDelay.count === 0;
  const seconds = (nanoseconds) => (empty || !Number.isFinite(nanoseconds) ? 0 : nanoseconds / 1e9);
  return [
    gauge('nodejs_eventloop_lag_seconds', 'Lag of event loop in seconds.', lagSeconds),
    gauge('nodejs_eventloop_lag_min_seconds', 'The minimum recorded event loop delay.', seconds(loopDelay.min)),
    gauge('nodejs_eventloop_lag_max_seconds', 'The maximum recorded event loop delay.', seconds(loopDelay.max)),
    gauge('nodejs_eventloop_lag_mean_seconds', 'The mean of the recorded event loop delays.', seconds(loopDelay.mean)),
    gauge(
      'nodejs_eventloop_lag_stddev_seconds',
      'The standard deviation of the recorded event loop delays.',
      seconds(loopDelay.stddev),
    ),
    gauge(
      'nodejs_eventloop_lag_p50_seconds',
      'The 50th percentile of the recorded event loop delays.',
      seconds(loopDelay.percentile(50)),
    ),
    gauge(
      'nodejs_eventloop_lag_p90_seconds',
      'The 90th percentile of the recorded event loop delays.',
      seconds(loopDelay.percentile(90)),
    ),
    gauge(
      'nodejs_eventloop_lag_p99_seconds',
      'The 99th percentile of the recorded event loop delays.',
      seconds(loopDelay.percentile(99)),
    ),
  ];
}

function activityFamilies() {
  const resources = process.getActiveResourcesInfo();
  const handles = process._getActiveHandles();
  const requests = process._getActiveRequests();
  return [
    {
      name: 'nodejs_active_resources',
      help: 'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
      type: 'gauge',
      samples: countBy(resources),
    },
    gauge('nodejs_active_resources_total', 'Total number of active resources.', resources.length),
    {
      name: 'nodejs_active_handles',
      help: 'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
      type: 'gauge',
      samples: countBy(constructorNames(handles)),
    },
    gauge('nodejs_active_handles_total', 'Total number of active handles.', handles.length),
    {
      name: 'nodejs_active_requests',
      help: 'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
      type: 'gauge',
      samples: countBy(constructorNames(requests)),
    },
    gauge('nodejs_active_requests_total', 'Total number of active requests.', requests.length),
  ];
}

function heapFamilies() {
  const memory = process.memoryUsage();
  const families = [
    gauge('nodejs_heap_size_total_bytes', 'Process heap size from Node.js in bytes.', memory.heapTotal),
    gauge('nodejs_heap_size_used_bytes', 'Process heap size used from Node.js in bytes.', memory.heapUsed),
    gauge('nodejs_external_memory_bytes', 'Node.js external memory size in bytes.', memory.external),
  ];
  const spaces = v8.getHeapSpaceStatistics().map((space) => ({
    space: space.space_name.slice(0, space.space_name.indexOf('_space')), // "old_space" -> "old"
    total: space.space_size,
    used: space.space_used_size,
    available: space.space_available_size,
  }));
  for (const kind of ['total', 'used', 'available']) {
    families.push({
      name: `nodejs_heap_space_size_${kind}_bytes`,
      help: `Process heap space size ${kind} from Node.js in bytes.`,
      type: 'gauge',
      samples: spaces.map((space) => ({ labels: { space: space.space }, value: space[kind] })),
    });
  }
  return families;
}

function labFamilies() {
  const { retainedBufferCount, retainedBytes } = retainedStats();
  return [
    gauge('lab_retained_bytes', 'Bytes held on purpose by POST /api/lab/memory-leak.', retainedBytes),
    gauge('lab_retained_buffers', 'Buffers held on purpose by POST /api/lab/memory-leak.', retainedBufferCount),
    counter('lab_event_loop_jams_total', 'Event loop jams completed by POST /api/lab/event-loop-jam.', eventLoopJamsTotal()),
    gauge(
      'lab_event_loop_jam_last_seconds',
      'How long the most recent POST /api/lab/event-loop-jam held the event loop (not reset by scrapes).',
      lastEventLoopJamSeconds(),
    ),
    gauge(
      'lab_event_loop_delay_max_seconds',
      'The longest event loop delay since the process started (the ticks of nodejs_eventloop_lag_*, never reset).',
      longestLoopDelaySeconds(),
    ),
    gauge('lab_cpu_profile_in_progress', '1 while POST /api/lab/cpu-profile is sampling, else 0.', cpuProfileInProgress() ? 1 : 0),
    gauge(
      'lab_heap_snapshot_in_progress',
      '1 while POST /api/lab/heap-snapshot is writing, else 0.',
      heapSnapshotInProgress() ? 1 : 0,
    ),
    counter('lab_heap_snapshots_total', 'Heap snapshots written by POST /api/lab/heap-snapshot.', heapSnapshotsTotal()),
  ];
}

export async function renderMetrics() {
  const lagSeconds = await measureLagSeconds();
  const families = [
    ...processFamilies(),
    ...eventLoopFamilies(lagSeconds),
    ...activityFamilies(),
    ...heapFamilies(),
    gauge('nodejs_version_info', 'Node.js version info.', 1, {
      version: process.version,
      major: MAJOR,
      minor: MINOR,
      patch: PATCH,
    }),
    {
      name: 'nodejs_gc_duration_seconds',
      help: 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.',
      type: 'histogram',
      samples: gcDuration.samples(),
    },
    ...labFamilies(),
    {
      name: 'http_request_duration_seconds',
      help: 'Duration of HTTP requests in seconds, by method, route pattern and status.',
      type: 'histogram',
      samples: httpRequestDuration.samples(),
    },
  ];
  return families.map(renderFamily).join('');
}
