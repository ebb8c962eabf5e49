import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SERVER_JS, sampleValue, startServer } from '../test-support/harness.js';

const JAM_URL = `file://${path.join(path.dirname(SERVER_JS), 'lab', 'event-loop-jam.js')}`;

// Profiles 1 s while a 600 ms jam runs, and returns the response and the parsed .cpuprofile.
async function profileAJam(server, checks = async () => {}) {
  const profiling = server.lab('POST', '/api/lab/cpu-profile?seconds=1');
  await new Promise((resolve) => setTimeout(resolve, 100));
  await checks();
  const jam = await server.lab('POST', '/api/lab/event-loop-jam?ms=600');
  assert.equal(jam.status, 200);
  const res = await profiling;
  assert.equal(res.status, 200, res.text);
  return { res, profile: JSON.parse(await readFile(res.json.path, 'utf8')) };
}

// Share of the busy samples (not idle, not "(program)") whose function matches.
function busyShare(profile, matches) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const busy = profile.samples.map((id) => byId.get(id)).filter((node) => !['(idle)', '(program)'].includes(node.callFrame.functionName));
  return busy.filter((node) => matches(node.callFrame)).length / busy.length;
}

describe('cpu-profile', () => {
  let server;
  before(async () => {
    server = await startServer(); // fresh: the first jam below is this process's first
  });
  after(() => server.stop());

  test('serves requests while profiling, is single-flight, and writes a .cpuprofile', async () => {
    const { res, profile } = await profileAJam(server, async () => {
      const second = await server.lab('POST', '/api/lab/cpu-profile?seconds=1');
      assert.equal(second.status, 409);
      assert.deepEqual(Object.keys(second.json), ['error', 'detail']);
      assert.equal(second.json.error, 'cpu_profile_in_progress');
      assert.equal((await server.lab('GET', '/api/lab/status')).json.cpuProfileInProgress, true);
      assert.equal(sampleValue(await server.metrics(), 'lab_cpu_profile_in_progress'), 1);
      assert.equal((await server.request('GET', '/api/health')).status, 200);
    });

    assert.deepEqual(Object.keys(res.json).sort(), ['durationMs', 'ok', 'path', 'sampleCount', 'seconds']);
    assert.equal(res.json.ok, true);
    assert.equal(res.json.seconds, 1);
    assert.ok(res.json.durationMs >= 1000 && res.json.durationMs < 3000, `durationMs ${res.json.durationMs}`);
    assert.equal(path.dirname(res.json.path), server.artifactDir);
    assert.equal((await stat(res.json.path)).mode & 0o777, 0o600);
    assert.match(path.basename(res.json.path), new RegExp(`^cpu-\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z-${server.child.pid}\\.cpuprofile$`));

    for (const field of ['nodes', 'samples', 'timeDeltas']) assert.ok(Array.isArray(profile[field]), field);
    assert.ok(Number.isFinite(profile.startTime) && Number.isFinite(profile.endTime));
    assert.ok(profile.endTime - profile.startTime >= 900_000, 'startTime/endTime are in microseconds');
    assert.equal(profile.samples.length, res.json.sampleCount);
    const { lastCpuProfile } = (await server.lab('GET', '/api/lab/status')).json;
    assert.equal(lastCpuProfile.path, res.json.path);
    assert.equal(lastCpuProfile.sampleCount, res.json.sampleCount);
    assert.equal(lastCpuProfile.bytes, (await stat(res.json.path)).size);
    assert.equal(profile.timeDeltas.length, profile.samples.length);
    assert.ok(profile.nodes.every((node) => node.callFrame && Number.isInteger(node.id)));

    // This process's first jam: its loop is compiled while the profiler runs, so the samples are
    // credited to blockEventLoop itself (the case Part 1's breakpoint-then-profile flow produces).
    const share = busyShare(profile, (frame) => frame.functionName === 'blockEventLoop' && frame.url === JAM_URL);
    assert.ok(share >= 0.8, `blockEventLoop has ${(share * 100).toFixed(1)}% of the busy samples`);

    assert.equal((await server.lab('GET', '/api/lab/status')).json.cpuProfileInProgress, false);
    assert.equal(sampleValue(await server.metrics(), 'lab_cpu_profile_in_progress'), 0);
  });

  test('a later jam is still found by its file (V8 may credit it to eventLoopJam, the caller)', async () => {
    const { profile } = await profileAJam(server);
    const share = busyShare(profile, (frame) => frame.url === JAM_URL);
    assert.ok(share >= 0.8, `event-loop-jam.js has ${(share * 100).toFixed(1)}% of the busy samples`);
  });
});
