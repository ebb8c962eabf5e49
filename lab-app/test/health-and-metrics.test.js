import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseExposition, sampleValue, startServer } from '../test-support/harness.js';

// prom-client's default metric names, types and HELP texts (lib/metrics/*.js), which dashboards expect.
const PROM_CLIENT_DEFAULTS = {
  process_cpu_user_seconds_total: ['counter', 'Total user CPU time spent in seconds.'],
  process_cpu_system_seconds_total: ['counter', 'Total system CPU time spent in seconds.'],
  process_cpu_seconds_total: ['counter', 'Total user and system CPU time spent in seconds.'],
  process_start_time_seconds: ['gauge', 'Start time of the process since unix epoch in seconds.'],
  process_resident_memory_bytes: ['gauge', 'Resident memory size in bytes.'],
  nodejs_eventloop_lag_seconds: ['gauge', 'Lag of event loop in seconds.'],
  nodejs_eventloop_lag_min_seconds: ['gauge', 'The minimum recorded event loop delay.'],
  nodejs_eventloop_lag_max_seconds: ['gauge', 'The maximum recorded event loop delay.'],
  nodejs_eventloop_lag_mean_seconds: ['gauge', 'The mean of the recorded event loop delays.'],
  nodejs_eventloop_lag_stddev_seconds: ['gauge', 'The standard deviation of the recorded event loop delays.'],
  nodejs_eventloop_lag_p50_seconds: ['gauge', 'The 50th percentile of the recorded event loop delays.'],
  nodejs_eventloop_lag_p90_seconds: ['gauge', 'The 90th percentile of the recorded event loop delays.'],
  nodejs_eventloop_lag_p99_seconds: ['gauge', 'The 99th percentile of the recorded event loop delays.'],
  nodejs_active_handles: [
    'gauge',
    'Number of active libuv handles grouped by handle type. Every handle type is C++ class name.',
  ],
  nodejs_active_handles_total: ['gauge', 'Total number of active handles.'],
  nodejs_active_requests: [
    'gauge',
    'Number of active libuv requests grouped by request type. Every request type is C++ class name.',
  ],
  nodejs_active_requests_total: ['gauge', 'Total number of active requests.'],
  nodejs_active_resources: [
    'gauge',
    'Number of active resources that are currently keeping the event loop alive, grouped by async resource type.',
  ],
  nodejs_active_resources_total: ['gauge', 'Total number of active resources.'],
  nodejs_heap_size_total_bytes: ['gauge', 'Process heap size from Node.js in bytes.'],
  nodejs_heap_size_used_bytes: ['gauge', 'Process heap size used from Node.js in bytes.'],
  nodejs_external_memory_bytes: ['gauge', 'Node.js external memory size in bytes.'],
  nodejs_heap_space_size_total_bytes: ['gauge', 'Process heap space size total from Node.js in bytes.'],
  nodejs_heap_space_size_used_bytes: ['gauge', 'Process heap space size used from Node.js in bytes.'],
  nodejs_heap_space_size_available_bytes: ['gauge', 'Process heap space size available from Node.js in bytes.'],
  nodejs_version_info: ['gauge', 'Node.js version info.'],
  nodejs_gc_duration_seconds: ['histogram', 'Garbage collection duration by kind, one of major, minor, incremental or weakcb.'],
};
const LINUX_ONLY = {
  process_virtual_memory_bytes: ['gauge', 'Virtual memory size in bytes.'],
  process_heap_bytes: ['gauge', 'Process heap size in bytes.'],
  process_open_fds: ['gauge', 'Number of open file descriptors.'],
  process_max_fds: ['gauge', 'Maximum number of open file descriptors.'],
};
const LAB_METRICS = {
  lab_retained_bytes: 'gauge',
  lab_retained_buffers: 'gauge',
  lab_event_loop_jams_total: 'counter',
  lab_event_loop_jam_last_seconds: 'gauge',
  lab_event_loop_delay_max_seconds: 'gauge',
  lab_cpu_profile_in_progress: 'gauge',
  lab_heap_snapshot_in_progress: 'gauge',
  lab_heap_snapshots_total: 'counter',
  http_request_duration_seconds: 'histogram',
};

describe('health and metrics', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('GET /api/health answers status, uptime and pid, without a token', async () => {
    const res = await server.request('GET', '/api/health');
    assert.equal(res.status, 200);
    assert.match(res.headers['content-type'], /^application\/json/);
    assert.deepEqual(Object.keys(res.json).sort(), ['pid', 'status', 'uptimeSeconds']);
    assert.equal(res.json.status, 'ok');
    assert.equal(res.json.pid, server.child.pid);
    assert.ok(res.json.uptimeSeconds >= 0);
  });

  test('GET /api/metrics is Prometheus text 0.0.4 that parses line by line', async () => {
    const res = await server.request('GET', '/api/metrics');
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8');
    const families = parseExposition(res.text); // throws on any malformed or misplaced line
    for (const family of families.values()) {
      for (const sample of family.samples) {
        assert.ok(Number.isFinite(sample.value), `${sample.name} ${JSON.stringify(sample.labels)} = ${sample.value}`);
      }
    }
  });

  test("metrics carry prom-client's default names, types and HELP texts", async () => {
    const families = await server.metrics();
    const expected = { ...PROM_CLIENT_DEFAULTS, ...(process.platform === 'linux' ? LINUX_ONLY : {}) };
    for (const [name, [type, help]] of Object.entries(expected)) {
      const family = families.get(name);
      assert.ok(family, `missing ${name}`);
      assert.equal(family.type, type, name);
      assert.equal(family.help, help, name);
    }
    for (const [name, type] of Object.entries(LAB_METRICS)) {
      assert.equal(families.get(name)?.type, type, name);
      assert.ok(families.get(name).help.length > 10, `${name} has a HELP text`);
    }
    const [major, minor, patch] = process.versions.node.split('.');
    assert.equal(sampleValue(families, 'nodejs_version_info', { version: process.version, major, minor, patch }), 1);
    const spaces = families.get('nodejs_heap_space_size_used_bytes').samples.map((s) => s.labels.space);
    assert.ok(spaces.includes('old') && spaces.includes('new'), `spaces: ${spaces}`);
    assert.ok(!spaces.some((space) => space.endsWith('_space')));
    assert.ok(sampleValue(families, 'process_resident_memory_bytes') > 10 * 1024 * 1024);
    assert.ok(sampleValue(families, 'nodejs_active_handles_total') >= 1);
  });

  test('the GC histogram has prom-client buckets and a kind label', async () => {
    // memory-clear forces a full collection, so at least one "major" observation exists after it.
    const clear = await server.lab('POST', '/api/lab/memory-clear');
    assert.equal(clear.status, 200);
    const families = await server.metrics();
    const buckets = families
      .get('nodejs_gc_duration_seconds')
      .samples.filter((s) => s.name === 'nodejs_gc_duration_seconds_bucket' && s.labels.kind === 'major')
      .map((s) => s.labels.le);
    assert.deepEqual(buckets, ['0.001', '0.01', '0.1', '1', '2', '5', '+Inf']);
    assert.ok(sampleValue(families, 'nodejs_gc_duration_seconds_count', { kind: 'major' }) >= 1);
  });

  test('nodejs_eventloop_lag_max_seconds shows a jam since the previous scrape, then resets', async () => {
    await server.metrics(); // start a fresh window
    const jam = await server.lab('POST', '/api/lab/event-loop-jam?ms=1200');
    assert.equal(jam.status, 200);
    const during = await server.metrics();
    const max = sampleValue(during, 'nodejs_eventloop_lag_max_seconds');
    assert.ok(max >= 1.0, `lag max after a 1200 ms jam: ${max}`);
    assert.ok(max < 5, `lag max is in seconds: ${max}`);
    assert.ok(sampleValue(during, 'nodejs_eventloop_lag_p99_seconds') >= 1.0);

    await new Promise((resolve) => setTimeout(resolve, 100));
    const later = await server.metrics();
    assert.ok(sampleValue(later, 'nodejs_eventloop_lag_max_seconds') < 0.5, 'the window was reset by the scrape');
  });

  test('a jam right after a scrape is never lost (a reset must not drop the delay in progress)', async () => {
    for (let i = 0; i < 4; i += 1) {
      await server.metrics();
      await server.lab('POST', '/api/lab/event-loop-jam?ms=300');
      const max = sampleValue(await server.metrics(), 'nodejs_eventloop_lag_max_seconds');
      assert.ok(max >= 0.29, `round ${i}: lag max after a 300 ms jam: ${max}`);
    }
  });

  test('back-to-back scrapes never expose the empty histogram as garbage', async () => {
    for (let i = 0; i < 5; i += 1) {
      const families = await server.metrics();
      for (const name of ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']) {
        const value = sampleValue(families, `nodejs_eventloop_lag_${name}_seconds`);
        assert.ok(Number.isFinite(value) && value >= 0 && value < 60, `${name} = ${value}`);
      }
    }
  });

  test('http_request_duration_seconds labels routes by pattern, and every 404 as "unmatched"', async () => {
    for (let i = 0; i < 3; i += 1) await server.request('GET', `/no/such/path/${i}?x=${i}`);
    await server.request('GET', '/api/health');
    const families = await server.metrics();
    const routes = new Set(families.get('http_request_duration_seconds').samples.map((s) => s.labels.route));
    assert.ok(routes.has('/api/health'));
    assert.ok(routes.has('unmatched'));
    assert.ok(![...routes].some((route) => route.startsWith('/no/')), [...routes].join(' '));
    assert.equal(
      sampleValue(families, 'http_request_duration_seconds_count', { method: 'GET', route: 'unmatched', status: '404' }),
      3,
    );
  });

  test('each request is one JSON access-log line on stdout, without query or token', async () => {
    await server.lab('GET', '/api/lab/status?secret=hunter2');
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = server.stdout.trim().split('\n').map((line) => JSON.parse(line));
    const entry = lines.findLast((line) => line.path === '/api/lab/status');
    assert.ok(entry, 'an access-log line for /api/lab/status');
    assert.equal(entry.method, 'GET');
    assert.equal(entry.status, 400);
    assert.equal(typeof entry.durationMs, 'number');
    assert.ok(!Number.isNaN(Date.parse(entry.time)));
    assert.ok(!server.stdout.includes('hunter2'));
    assert.ok(!server.stdout.includes('test-token') && !server.stderr.includes('test-token'));
  });
});
