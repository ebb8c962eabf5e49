import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { httpRequest, startServer, waitForStderr } from '../test-support/harness.js';

async function exitWithin(server, ms) {
  const started = Date.now();
  const result = await Promise.race([
    server.exited,
    new Promise((resolve) => setTimeout(() => resolve({ timedOut: true }), ms)),
  ]);
  return { ...result, elapsedMs: Date.now() - started };
}

describe('signals', () => {
  for (const signal of ['SIGTERM', 'SIGINT']) {
    test(`${signal} exits 0 promptly`, async () => {
      const server = await startServer();
      try {
        server.child.kill(signal);
        const result = await exitWithin(server, 5000);
        assert.deepEqual([result.code, result.signal], [0, null], JSON.stringify(result));
        assert.match(server.stdout, new RegExp(`received ${signal}`));
      } finally {
        await server.stop();
      }
    });
  }

  test('SIGTERM with an idle keep-alive connection open still exits 0 within 5 s', async () => {
    const server = await startServer();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const res = await httpRequest({ port: server.port, path: '/api/health', agent });
      assert.equal(res.status, 200);
      assert.equal(res.headers.connection, 'keep-alive');
      assert.equal(Object.values(agent.freeSockets).flat().length, 1, 'the socket stays open');
      server.child.kill('SIGTERM');
      const result = await exitWithin(server, 5000);
      assert.equal(result.code, 0, JSON.stringify(result));
      assert.ok(result.elapsedMs < 2000, `took ${result.elapsedMs} ms`);
    } finally {
      agent.destroy();
      await server.stop();
    }
  });

  test('SIGTERM lets a request in flight finish (a CPU profile is cut short and still written)', async () => {
    const server = await startServer();
    try {
      const profiling = server.lab('POST', '/api/lab/cpu-profile?seconds=30');
      await new Promise((resolve) => setTimeout(resolve, 300));
      server.child.kill('SIGTERM');
      const res = await profiling;
      assert.equal(res.status, 200, res.text);
      assert.equal(res.headers.connection, 'close');
      assert.equal(res.json.seconds, 30);
      assert.ok(res.json.durationMs < 5000, `durationMs ${res.json.durationMs}`);
      assert.ok(res.json.sampleCount > 0);
      const result = await exitWithin(server, 5000);
      assert.equal(result.code, 0, JSON.stringify(result));
    } finally {
      await server.stop();
    }
  });

  test('SIGTERM during a jam: the jam answers, then the process exits 0', async () => {
    const server = await startServer();
    try {
      const jam = server.lab('POST', '/api/lab/event-loop-jam?ms=800');
      await new Promise((resolve) => setTimeout(resolve, 200));
      server.child.kill('SIGTERM'); // handled once the loop is free again
      const res = await jam;
      assert.equal(res.status, 200);
      const result = await exitWithin(server, 5000);
      assert.equal(result.code, 0, JSON.stringify(result));
    } finally {
      await server.stop();
    }
  });

  test('SIGUSR1 opens the inspector at run time (no SIGUSR1 listener is installed)', async () => {
    // --inspect-port=0 sets the port SIGUSR1 uses, so the test does not need 9229 free.
    const server = await startServer({ execArgv: ['--inspect-port=0'] });
    try {
      const before = await server.lab('GET', '/api/lab/status');
      assert.equal(before.json.inspectorUrl, null);
      assert.doesNotMatch(server.stderr, /Debugger listening/);

      server.child.kill('SIGUSR1');
      const [, url] = await waitForStderr(server, /Debugger listening on (ws:\/\/127\.0\.0\.1:\d+\/[0-9a-f-]+)/);

      const after = await server.lab('GET', '/api/lab/status');
      assert.equal(after.json.inspectorUrl, url);
      assert.equal((await server.request('GET', '/api/health')).status, 200, 'still serving');

      server.child.kill('SIGTERM');
      const result = await exitWithin(server, 5000);
      assert.equal(result.code, 0, JSON.stringify(result));
    } finally {
      await server.stop();
    }
  });
});

describe('configuration errors', () => {
  for (const [name, value] of [
    ['PORT', '70000'],
    ['PORT', 'http'],
    ['LAB_MAX_RETAINED_MB', '0'],
    ['LAB_MAX_RETAINED_MB', '1.5'],
  ]) {
    test(`${name}=${value} stops the process with a message`, async () => {
      await assert.rejects(startServer({ env: { [name]: value } }), (err) => {
        assert.match(err.message, /exited with 1/);
        assert.match(err.message, new RegExp(name));
        return true;
      });
    });
  }
});
