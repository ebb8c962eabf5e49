import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { LAB_ENV, SERVER_JS, sampleValue, startServer } from '../test-support/harness.js';

const MIB = 1024 * 1024;

describe('lab endpoints', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('GET /api/lab/status reports the lab state', async () => {
    const res = await server.lab('GET', '/api/lab/status');
    assert.equal(res.status, 200);
    const { memory, ...rest } = res.json;
    assert.deepEqual(Object.keys(memory).sort(), ['arrayBuffers', 'external', 'heapTotal', 'heapUsed', 'rss']);
    assert.ok(memory.rss > memory.heapUsed && memory.heapUsed > 0, JSON.stringify(memory));
    assert.deepEqual(rest, {
      labEnabled: true,
      nodeEnv: 'test',
      retainedBufferCount: 0,
      retainedBytes: 0,
      cpuProfileInProgress: false,
      heapSnapshotInProgress: false,
      inspectorUrl: null,
      pid: server.child.pid,
      artifactDir: server.artifactDir,
      lastCpuProfile: null,
      lastHeapSnapshot: null,
    });
  });

  test('event-loop-jam blocks for ms and blocks /api/health meanwhile', async () => {
    const before = sampleValue(await server.metrics(), 'lab_event_loop_jams_total');
    const started = Date.now();
    const jam = server.lab('POST', '/api/lab/event-loop-jam?ms=500');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const health = await server.request('GET', '/api/health');
    const healthAt = Date.now() - started;
    const res = await jam;
    assert.equal(res.status, 200);
    assert.deepEqual(Object.keys(res.json).sort(), ['durationMs', 'iterations', 'ok', 'requestedMs']);
    assert.equal(res.json.ok, true);
    assert.equal(res.json.requestedMs, 500);
    assert.ok(res.json.durationMs >= 500 && res.json.durationMs < 1500, `durationMs ${res.json.durationMs}`);
    assert.ok(res.json.iterations > 0);
    assert.equal(health.status, 200);
    assert.ok(healthAt >= 450, `health answered after ${healthAt} ms, i.e. it waited for the jam`);
    const after = await server.metrics();
    assert.equal(sampleValue(after, 'lab_event_loop_jams_total'), before + 1);
    // The last jam's length survives scrapes (the lag max does not): read it twice.
    assert.ok(sampleValue(after, 'lab_event_loop_jam_last_seconds') >= 0.45);
    assert.ok(sampleValue(await server.metrics(), 'lab_event_loop_jam_last_seconds') >= 0.45);
    // So does the longest loop delay, measured by the loop-delay ticks rather than by the jam itself.
    assert.ok(sampleValue(after, 'lab_event_loop_delay_max_seconds') >= 0.45);
    assert.ok(sampleValue(await server.metrics(), 'lab_event_loop_delay_max_seconds') >= 0.45);
  });

  test('memory-leak grows retained and external memory; memory-clear releases it', async () => {
    const baseline = await server.metrics();
    const externalBefore = sampleValue(baseline, 'nodejs_external_memory_bytes');
    const rssBefore = sampleValue(baseline, 'process_resident_memory_bytes');

    for (const count of [1, 2]) {
      const res = await server.lab('POST', '/api/lab/memory-leak?mb=64');
      assert.equal(res.status, 200);
      assert.deepEqual(res.json, {
        ok: true,
        addedBytes: 64 * MIB,
        retainedBufferCount: count,
        retainedBytes: count * 64 * MIB,
      });
    }
    const status = await server.lab('GET', '/api/lab/status');
    assert.equal(status.json.retainedBytes, 128 * MIB);
    assert.equal(status.json.retainedBufferCount, 2);

    const leaked = await server.metrics();
    assert.equal(sampleValue(leaked, 'lab_retained_bytes'), 128 * MIB);
    assert.equal(sampleValue(leaked, 'lab_retained_buffers'), 2);
    assert.ok(sampleValue(leaked, 'nodejs_external_memory_bytes') >= externalBefore + 127 * MIB);
    // The buffers are filled, so their pages are resident, not just reserved.
    assert.ok(sampleValue(leaked, 'process_resident_memory_bytes') >= rssBefore + 100 * MIB);

    const clear = await server.lab('POST', '/api/lab/memory-clear');
    assert.equal(clear.status, 200);
    assert.deepEqual(clear.json, { ok: true, releasedBuffers: 2, releasedBytes: 128 * MIB, retainedBytes: 0 });

    const cleared = await server.metrics();
    assert.equal(sampleValue(cleared, 'lab_retained_bytes'), 0);
    assert.equal(sampleValue(cleared, 'lab_retained_buffers'), 0);
    const externalAfter = sampleValue(cleared, 'nodejs_external_memory_bytes');
    assert.ok(externalAfter < externalBefore + 16 * MIB, `external ${externalBefore} -> ${externalAfter}`);
    assert.ok(sampleValue(cleared, 'process_resident_memory_bytes') < sampleValue(leaked, 'process_resident_memory_bytes') - 64 * MIB);

    const again = await server.lab('POST', '/api/lab/memory-clear');
    assert.deepEqual(again.json, { ok: true, releasedBuffers: 0, releasedBytes: 0, retainedBytes: 0 });
  });

  test('heap-snapshot writes a .heapsnapshot DevTools can read', async () => {
    const before = sampleValue(await server.metrics(), 'lab_heap_snapshots_total');
    const res = await server.lab('POST', '/api/lab/heap-snapshot');
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(Object.keys(res.json).sort(), ['bytes', 'durationMs', 'ok', 'path']);
    assert.equal(path.dirname(res.json.path), server.artifactDir);
    assert.match(path.basename(res.json.path), new RegExp(`^heap-\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z-${server.child.pid}\\.heapsnapshot$`));
    const info = await stat(res.json.path);
    assert.equal(info.size, res.json.bytes);
    assert.equal(info.mode & 0o777, 0o600);
    const snapshot = JSON.parse(await readFile(res.json.path, 'utf8'));
    assert.ok(Array.isArray(snapshot.snapshot.meta.node_fields));
    assert.ok(Array.isArray(snapshot.snapshot.meta.node_types));
    assert.ok(snapshot.snapshot.node_count > 1000);
    assert.equal(snapshot.nodes.length, snapshot.snapshot.node_count * snapshot.snapshot.meta.node_fields.length);
    assert.equal(sampleValue(await server.metrics(), 'lab_heap_snapshots_total'), before + 1);
    const status = await server.lab('GET', '/api/lab/status');
    assert.equal(status.json.lastHeapSnapshot.path, res.json.path);
    assert.equal(status.json.lastHeapSnapshot.bytes, res.json.bytes);
  });

  test('heap-snapshot is single-flight: a concurrent request gets 409', async () => {
    const results = await Promise.all([1, 2, 3].map(() => server.lab('POST', '/api/lab/heap-snapshot')));
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses.filter((s) => s === 200).length, 1, statuses.join(','));
    for (const res of results.filter((r) => r.status !== 200)) {
      assert.equal(res.status, 409);
      assert.deepEqual(Object.keys(res.json), ['error', 'detail']);
      assert.equal(res.json.error, 'heap_snapshot_in_progress');
    }
  });
});

describe('the retention cap', () => {
  test('going over LAB_MAX_RETAINED_MB -> 409 saying what is retained, the cap and how to clear', async () => {
    const server = await startServer({ env: { ...LAB_ENV, LAB_MAX_RETAINED_MB: '100' } });
    try {
      assert.equal((await server.lab('POST', '/api/lab/memory-leak?mb=64')).status, 200);
      const over = await server.lab('POST', '/api/lab/memory-leak?mb=64');
      assert.equal(over.status, 409);
      assert.deepEqual(Object.keys(over.json), ['error', 'detail']);
      assert.equal(over.json.error, 'retention_cap_reached');
      assert.match(over.json.detail, /64 MiB is retained/);
      assert.match(over.json.detail, /LAB_MAX_RETAINED_MB is 100/);
      assert.match(over.json.detail, /POST \/api\/lab\/memory-clear/);
      assert.equal((await server.lab('GET', '/api/lab/status')).json.retainedBytes, 64 * MIB, 'nothing added');
      assert.equal((await server.lab('POST', '/api/lab/memory-leak?mb=36')).status, 200, 'up to the cap is fine');
      assert.equal((await server.lab('POST', '/api/lab/memory-clear')).status, 200);
      assert.equal((await server.lab('POST', '/api/lab/memory-leak?mb=64')).status, 200);
    } finally {
      await server.stop();
    }
  });
});

describe('unexpected failures', () => {
  test('an exception answers 500 in the error shape and the process stays up', async () => {
    // An artifact directory that cannot be created: its parent is a file.
    const server = await startServer({ env: { ...LAB_ENV, LAB_ARTIFACT_DIR: `${SERVER_JS}/nope` } });
    try {
      const res = await server.lab('POST', '/api/lab/heap-snapshot');
      assert.equal(res.status, 500);
      assert.deepEqual(res.json, {
        error: 'internal_error',
        detail: 'The server failed to handle this request; see its log.',
      });
      assert.match(server.stderr, /ENOTDIR/);
      const status = await server.lab('GET', '/api/lab/status');
      assert.equal(status.json.heapSnapshotInProgress, false, 'the single-flight flag was released');
      assert.equal((await server.lab('POST', '/api/lab/cpu-profile?seconds=1')).status, 500);
      assert.equal((await server.lab('GET', '/api/lab/status')).json.cpuProfileInProgress, false);
      assert.equal((await server.request('GET', '/api/health')).status, 200);
    } finally {
      await server.stop();
    }
  });
});
