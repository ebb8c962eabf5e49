import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { LAB_ENV, LAB_ROUTES, TOKEN, startServer } from '../test-support/harness.js';

// The parts of a response that could tell one 404 from another.
function fingerprint(res) {
  const { 'content-type': type, 'content-length': length, allow } = res.headers;
  return { status: res.status, type, length, allow, text: res.text };
}

describe('unknown paths and a disabled lab', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { LAB_TOKEN: TOKEN } }); // LAB_ENABLE unset
  });
  after(() => server.stop());

  test('an unknown path answers 404 not_found', async () => {
    const res = await server.request('GET', '/api/nope');
    assert.equal(res.status, 404);
    assert.deepEqual(Object.keys(res.json), ['error', 'detail']);
    assert.equal(res.json.error, 'not_found');
  });

  test('every lab route, with any method, token or not, answers exactly like an unknown path', async () => {
    const unknown = fingerprint(await server.request('GET', '/api/nope'));
    for (const [method, path] of LAB_ROUTES) {
      for (const m of [method, 'GET', 'POST', 'DELETE']) {
        assert.deepEqual(fingerprint(await server.request(m, path)), unknown, `${m} ${path}`);
        assert.deepEqual(fingerprint(await server.lab(m, `${path}?ms=5`)), unknown, `${m} ${path} with token`);
      }
    }
  });

  test('metrics do not name the disabled lab routes', async () => {
    await server.request('POST', '/api/lab/event-loop-jam');
    const families = await server.metrics();
    const routes = families.get('http_request_duration_seconds').samples.map((s) => s.labels.route);
    assert.ok(!routes.some((route) => route.startsWith('/api/lab')), routes.join(' '));
  });

});

describe('an enabled lab', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('a wrong method on a known route answers 405 with Allow', async () => {
    for (const [method, path] of [...LAB_ROUTES, ['GET', '/api/health'], ['GET', '/api/metrics']]) {
      const wrong = method === 'GET' ? 'POST' : 'GET';
      const res = await server.request(wrong, path);
      assert.equal(res.status, 405, `${wrong} ${path}`);
      assert.equal(res.headers.allow, method);
      assert.equal(res.json.error, 'method_not_allowed');
      assert.deepEqual(Object.keys(res.json), ['error', 'detail']);
    }
  });

  test('no token answers 401', async () => {
    for (const [method, path] of LAB_ROUTES) {
      const res = await server.request(method, path);
      assert.equal(res.status, 401, `${method} ${path}`);
      assert.equal(res.json.error, 'unauthorized');
      assert.match(res.json.detail, /x-lab-token/);
    }
  });

  test('a wrong token answers 401, whatever its length', async () => {
    const wrongs = ['x', TOKEN.slice(0, -1), `${TOKEN}x`, TOKEN.replace(/.$/, 'Z'), 'y'.repeat(4096), ''];
    for (const wrong of wrongs) {
      const res = await server.request('GET', '/api/lab/status', { headers: { 'x-lab-token': wrong } });
      assert.equal(res.status, 401, `token of length ${wrong.length}`);
      assert.equal(res.json.error, 'unauthorized');
      assert.ok(!res.text.includes(TOKEN));
    }
  });

  test('the right token answers 200', async () => {
    const res = await server.lab('GET', '/api/lab/status');
    assert.equal(res.status, 200);
  });

  test('health and metrics need no token', async () => {
    assert.equal((await server.request('GET', '/api/health')).status, 200);
    assert.equal((await server.request('GET', '/api/metrics')).status, 200);
  });
});

describe('a lab enabled without a usable token fails closed', () => {
  for (const [label, env] of [
    ['short token', { LAB_ENABLE: 'true', LAB_TOKEN: 'fifteen-chars!!' }],
    ['empty token', { LAB_ENABLE: 'true', LAB_TOKEN: '' }],
    ['no token', { LAB_ENABLE: 'true' }],
  ]) {
    test(`${label}: warning at start, 503 on every lab route, even with that token`, async () => {
      const server = await startServer({ env });
      try {
        assert.match(server.stderr, /LAB_TOKEN/);
        assert.match(server.stderr, /16/);
        for (const [method, path] of LAB_ROUTES) {
          for (const headers of [{}, { 'x-lab-token': env.LAB_TOKEN ?? '' }]) {
            const res = await server.request(method, path, { headers });
            assert.equal(res.status, 503, `${method} ${path}`);
            assert.equal(res.json.error, 'lab_token_not_configured');
            assert.match(res.json.detail, /LAB_TOKEN/);
            assert.match(res.json.detail, /16/);
          }
        }
        assert.equal((await server.request('GET', '/api/health')).status, 200);
        if (env.LAB_TOKEN) assert.ok(!server.stderr.includes(env.LAB_TOKEN), 'the token is never logged');
      } finally {
        await server.stop();
      }
    });
  }
});

describe('NODE_ENV=production', () => {
  test('without LAB_ALLOW_PROD: 403 explaining LAB_ALLOW_PROD (after the token check)', async () => {
    const server = await startServer({ env: { ...LAB_ENV, NODE_ENV: 'production' } });
    try {
      assert.equal((await server.request('GET', '/api/lab/status')).status, 401);
      for (const [method, path] of LAB_ROUTES) {
        const res = await server.lab(method, path);
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.json.error, 'lab_disabled_in_production');
        assert.match(res.json.detail, /LAB_ALLOW_PROD=true/);
      }
      assert.equal((await server.request('GET', '/api/health')).status, 200);
    } finally {
      await server.stop();
    }
  });

  test('with LAB_ALLOW_PROD=true: 200', async () => {
    const server = await startServer({ env: { ...LAB_ENV, NODE_ENV: 'production', LAB_ALLOW_PROD: 'true' } });
    try {
      const res = await server.lab('GET', '/api/lab/status');
      assert.equal(res.status, 200);
      assert.equal(res.json.nodeEnv, 'production');
      assert.equal((await server.lab('POST', '/api/lab/event-loop-jam?ms=5')).status, 200);
    } finally {
      await server.stop();
    }
  });
});

// The guard fails closed: only NODE_ENV exactly "development" or "test" is not production.
describe('what counts as production: every NODE_ENV but exactly development or test', () => {
  const PRODUCTION = [
    undefined, // unset
    '',
    'production',
    'Production',
    'PRODUCTION',
    ' production',
    'production ',
    'prod',
    'staging',
    'Development',
    'DEVELOPMENT',
    ' development',
    'development\t',
    'dev',
    'Test',
    'TEST',
    ' test',
    'testing',
    'local',
  ];
  const NOT_PRODUCTION = ['development', 'test'];

  function envWith(nodeEnv, extra = {}) {
    const env = { ...LAB_ENV, ...extra };
    delete env.NODE_ENV;
    if (nodeEnv !== undefined) env.NODE_ENV = nodeEnv;
    return env;
  }

  for (const nodeEnv of PRODUCTION) {
    const label = nodeEnv === undefined ? 'NODE_ENV unset' : `NODE_ENV=${JSON.stringify(nodeEnv)}`;
    test(`${label}: production — 403 without LAB_ALLOW_PROD, a warning at start; 200 with it`, async () => {
      const server = await startServer({ env: envWith(nodeEnv) });
      try {
        const res = await server.lab('GET', '/api/lab/status');
        assert.equal(res.status, 403, label);
        assert.equal(res.json.error, 'lab_disabled_in_production');
        assert.match(res.json.detail, /LAB_ALLOW_PROD=true/);
        assert.match(res.json.detail, /counts as production/);
        assert.match(server.stderr, /treats as production/);
        assert.match(server.stderr, /LAB_ALLOW_PROD=true/);
        // The token is still checked first.
        assert.equal((await server.request('GET', '/api/lab/status')).status, 401);
      } finally {
        await server.stop();
      }
      const allowed = await startServer({ env: envWith(nodeEnv, { LAB_ALLOW_PROD: 'true' }) });
      try {
        assert.equal((await allowed.lab('GET', '/api/lab/status')).status, 200, `${label} with LAB_ALLOW_PROD=true`);
        assert.doesNotMatch(allowed.stderr, /treats as production/);
      } finally {
        await allowed.stop();
      }
    });
  }

  for (const nodeEnv of NOT_PRODUCTION) {
    test(`NODE_ENV=${nodeEnv}: not production — 200 without LAB_ALLOW_PROD, no warning`, async () => {
      const server = await startServer({ env: envWith(nodeEnv) });
      try {
        const res = await server.lab('GET', '/api/lab/status');
        assert.equal(res.status, 200);
        assert.equal(res.json.nodeEnv, nodeEnv);
        assert.equal(server.stderr, '');
      } finally {
        await server.stop();
      }
    });
  }
});

// A switch is on only when exactly "true"; a value that looks like an attempt to turn it on is
// reported at start, naming the variable, the value and what to set.
describe('LAB_ENABLE and LAB_ALLOW_PROD: exactly "true", near misses said at start', () => {
  const NEAR_MISSES = ['TRUE', 'True', 'tRuE', ' true', 'true ', '"true"', '1', 'yes', 'Yes', 'y', 'on', 'ON', 'enabled', 't'];
  const CLEARLY_OFF = [undefined, '', 'false', 'FALSE', 'False', '0', 'no', 'NO', 'off', ' off '];

  function warningsOf(server) {
    return server.stderr
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line))
      .filter((line) => line.level === 'warn')
      .map((line) => line.msg);
  }

  for (const value of NEAR_MISSES) {
    test(`LAB_ENABLE=${JSON.stringify(value)}: routes off (404), one warning naming it`, async () => {
      const server = await startServer({ env: { NODE_ENV: 'test', LAB_ENABLE: value, LAB_TOKEN: TOKEN } });
      try {
        assert.equal((await server.lab('GET', '/api/lab/status')).status, 404);
        const warnings = warningsOf(server).filter((w) => w.includes('LAB_ENABLE'));
        assert.equal(warnings.length, 1, server.stderr);
        assert.ok(warnings[0].includes(`LAB_ENABLE=${JSON.stringify(value)}`), warnings[0]);
        assert.match(warnings[0], /set LAB_ENABLE=true/);
        assert.match(warnings[0], /404/);
      } finally {
        await server.stop();
      }
    });

    test(`LAB_ALLOW_PROD=${JSON.stringify(value)}: production stays refused (403), one warning naming it`, async () => {
      const server = await startServer({ env: { ...LAB_ENV, NODE_ENV: 'production', LAB_ALLOW_PROD: value } });
      try {
        assert.equal((await server.lab('GET', '/api/lab/status')).status, 403);
        const warnings = warningsOf(server).filter((w) => w.startsWith('LAB_ALLOW_PROD='));
        assert.equal(warnings.length, 1, server.stderr);
        assert.ok(warnings[0].includes(`LAB_ALLOW_PROD=${JSON.stringify(value)}`), warnings[0]);
        assert.match(warnings[0], /set LAB_ALLOW_PROD=true/);
      } finally {
        await server.stop();
      }
    });
  }

  for (const value of CLEARLY_OFF) {
    const label = value === undefined ? 'unset' : JSON.stringify(value);
    test(`LAB_ENABLE ${label}: off, and nothing to say`, async () => {
      const env = { NODE_ENV: 'test', LAB_TOKEN: TOKEN };
      if (value !== undefined) Object.assign(env, { LAB_ENABLE: value, LAB_ALLOW_PROD: value });
      const server = await startServer({ env });
      try {
        assert.equal((await server.lab('GET', '/api/lab/status')).status, 404);
        assert.deepEqual(warningsOf(server), []);
      } finally {
        await server.stop();
      }
    });
  }
});
