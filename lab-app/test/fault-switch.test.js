// The test-only fault switch (src/fault-switch.js): honoured only with test-support/faults.js present
// and outside production (or with the explicit LAB_FAULT_IN_PRODUCTION=true), announced at start,
// and never silent when ignored.
import assert from 'node:assert/strict';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { APP_DIR, LAB_ENV, sampleValue, startServer } from '../test-support/harness.js';
import { FAULTS } from '../test-support/faults.js';

function logLines(text) {
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line));
}

describe('the fault switch', () => {
  test('every fault says what it breaks, and changes something', () => {
    assert.ok(Object.keys(FAULTS).length >= 15);
    for (const [name, fault] of Object.entries(FAULTS)) {
      assert.match(name, /^[a-z0-9-]+$/);
      assert.ok(fault.breaks?.length > 10, name);
      assert.ok(fault.routes || fault.guard || fault.config || fault.start, `${name} changes nothing`);
    }
  });

  test('honoured outside production: announced at start, and the behaviour is broken', async () => {
    const server = await startServer({ env: { ...LAB_ENV, LAB_FAULT: 'jam-not-counted' } });
    try {
      const announced = logLines(server.stdout).find((l) => l.fault === 'jam-not-counted');
      assert.ok(announced, server.stdout);
      assert.match(announced.msg, /broken on purpose/);
      assert.equal((await server.lab('POST', '/api/lab/event-loop-jam?ms=5')).status, 200);
      assert.equal(sampleValue(await server.metrics(), 'lab_event_loop_jams_total'), 0);
    } finally {
      await server.stop();
    }
  });

  test('without LAB_FAULT nothing is broken, though the faults module is there', async () => {
    const server = await startServer();
    try {
      assert.ok(!logLines(server.stdout).some((l) => 'fault' in l));
      await server.lab('POST', '/api/lab/event-loop-jam?ms=5');
      assert.equal(sampleValue(await server.metrics(), 'lab_event_loop_jams_total'), 1);
    } finally {
      await server.stop();
    }
  });

  for (const nodeEnv of [undefined, 'production', 'Development']) {
    test(`ignored in production (NODE_ENV ${nodeEnv ?? 'unset'}), with a warning saying why`, async () => {
      const env = { ...LAB_ENV, LAB_ALLOW_PROD: 'true', LAB_FAULT: 'jam-not-counted' };
      delete env.NODE_ENV;
      if (nodeEnv !== undefined) env.NODE_ENV = nodeEnv;
      const server = await startServer({ env });
      try {
        assert.match(server.stderr, /LAB_FAULT=\\"jam-not-counted\\" is ignored: this process counts as production/);
        await server.lab('POST', '/api/lab/event-loop-jam?ms=5');
        assert.equal(sampleValue(await server.metrics(), 'lab_event_loop_jams_total'), 1);
      } finally {
        await server.stop();
      }
    });
  }

  test('honoured in production only with LAB_FAULT_IN_PRODUCTION=true, exactly', async () => {
    for (const [relax, honoured] of [
      ['TRUE', false],
      ['1', false],
      ['true', true],
    ]) {
      const env = {
        ...LAB_ENV,
        NODE_ENV: 'production',
        LAB_ALLOW_PROD: 'true',
        LAB_FAULT: 'jam-not-counted',
        LAB_FAULT_IN_PRODUCTION: relax,
      };
      const server = await startServer({ env });
      try {
        await server.lab('POST', '/api/lab/event-loop-jam?ms=5');
        assert.equal(sampleValue(await server.metrics(), 'lab_event_loop_jams_total'), honoured ? 0 : 1, relax);
      } finally {
        await server.stop();
      }
    }
  });

  test('ignored, with a warning, when the app has no test-support/faults.js (as in every image)', async () => {
    // The app as an image holds it: package.json and src/ only.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lab-app-image-'));
    try {
      await cp(path.join(APP_DIR, 'src'), path.join(dir, 'src'), { recursive: true });
      await cp(path.join(APP_DIR, 'package.json'), path.join(dir, 'package.json'));
      const server = await startServer({
        env: { ...LAB_ENV, LAB_FAULT: 'jam-not-counted' },
        serverJs: path.join(dir, 'src', 'server.js'),
      });
      try {
        assert.match(server.stderr, /is ignored: the fault switch is for lab-runner's tests/);
        await server.lab('POST', '/api/lab/event-loop-jam?ms=5');
        assert.equal(sampleValue(await server.metrics(), 'lab_event_loop_jams_total'), 1);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('an unknown fault name stops the process with the names it knows', async () => {
    await assert.rejects(startServer({ env: { ...LAB_ENV, LAB_FAULT: 'no-such-fault' } }), (err) => {
      assert.match(err.message, /exited with 1/);
      assert.match(err.message, /LAB_FAULT must name a fault/);
      assert.match(err.message, /jam-yields/);
      return true;
    });
  });
});
