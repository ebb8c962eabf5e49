import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, describe, test } from 'node:test';
import { TOKEN, startServer } from '../test-support/harness.js';

const JAM = '/api/lab/event-loop-jam';

function assertErrorShape(res) {
  assert.deepEqual(Object.keys(res.json ?? {}), ['error', 'detail'], res.text);
  assert.match(res.json.error, /^[a-z]+(_[a-z]+)*$/);
  assert.ok(res.json.detail.length > 10);
}

describe('parameters', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  const BAD_QUERY_VALUES = {
    'out of range (high)': '600000',
    'out of range (zero)': '0',
    float: '1.5',
    'float with zero fraction': '100.0',
    hex: '0x10',
    exponent: '1e3',
    negative: '-5',
    "leading '+'": '%2B5',
    'leading zero': '0100',
    empty: '',
    'spaces': '%2010',
    'not a number': 'abc',
    'huge': '9'.repeat(400),
  };
  for (const [label, value] of Object.entries(BAD_QUERY_VALUES)) {
    test(`query ms ${label} -> 400 invalid_parameter naming ms and its range`, async () => {
      const res = await server.lab('POST', `${JAM}?ms=${value}`);
      assert.equal(res.status, 400, res.text);
      assertErrorShape(res);
      assert.equal(res.json.error, 'invalid_parameter');
      assert.match(res.json.detail, /^ms must be an integer from 1 to 60000 \(got '.*'\)\.$/);
      assert.ok(res.json.detail.length < 160, 'long input is cut short in the message');
    });
  }

  test('the message quotes the value given', async () => {
    const res = await server.lab('POST', `${JAM}?ms=600000`);
    assert.equal(res.json.detail, "ms must be an integer from 1 to 60000 (got '600000').");
  });

  test('a bare "?ms" is an empty value -> 400', async () => {
    const res = await server.lab('POST', `${JAM}?ms`);
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_parameter');
  });

  test('each route checks its own parameter and range', async () => {
    const leak = await server.lab('POST', '/api/lab/memory-leak?mb=1025');
    assert.equal(leak.status, 400);
    assert.equal(leak.json.detail, "mb must be an integer from 1 to 1024 (got '1025').");
    const profile = await server.lab('POST', '/api/lab/cpu-profile?seconds=121');
    assert.equal(profile.status, 400);
    assert.equal(profile.json.detail, "seconds must be an integer from 1 to 120 (got '121').");
  });

  test('a repeated parameter -> 400', async () => {
    const res = await server.lab('POST', `${JAM}?ms=1&ms=2`);
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_parameter');
    assert.match(res.json.detail, /ms is repeated/);
  });

  test('a parameter in both the query and the body -> 400', async () => {
    const res = await server.lab('POST', `${JAM}?ms=1`, { body: { ms: 2 } });
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'invalid_parameter');
    assert.match(res.json.detail, /both the query string and the JSON body/);
  });

  test('unknown parameters -> 400 naming them', async () => {
    const res = await server.lab('POST', `${JAM}?foo=1&ms=5`, { body: { bar: 2 } });
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'unknown_parameter');
    assert.match(res.json.detail, /'foo'/);
    assert.match(res.json.detail, /'bar'/);
    assert.match(res.json.detail, /accepts: ms/);
    const none = await server.lab('POST', '/api/lab/memory-clear?mb=5');
    assert.equal(none.status, 400);
    assert.match(none.json.detail, /takes no parameters/);
    const status = await server.lab('GET', '/api/lab/status?verbose=1');
    assert.equal(status.status, 400);
  });

  test('JSON bodies accept JSON integers only', async () => {
    for (const ms of ['5', 1.5, -1, 0, 60001, true, null, [5], { v: 5 }, 1e21]) {
      const res = await server.lab('POST', JAM, { body: { ms } });
      assert.equal(res.status, 400, `ms=${JSON.stringify(ms)}: ${res.text}`);
      assert.equal(res.json.error, 'invalid_parameter');
      assert.match(res.json.detail, /^ms must be an integer from 1 to 60000 \(got .*\)\.$/);
    }
    const text = await server.lab('POST', JAM, { body: { ms: '5' } });
    assert.equal(text.json.detail, 'ms must be an integer from 1 to 60000 (got "5").');
    const ok = await server.lab('POST', JAM, { body: { ms: 5 } });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.requestedMs, 5);
  });

  test('a query parameter in range is used as given', async () => {
    const res = await server.lab('POST', `${JAM}?ms=7`);
    assert.equal(res.status, 200);
    assert.equal(res.json.requestedMs, 7);
  });

  test('defaults apply when a parameter is absent', async () => {
    const leak = await server.lab('POST', '/api/lab/memory-leak');
    assert.equal(leak.status, 200);
    assert.equal(leak.json.addedBytes, 64 * 1024 * 1024);
    assert.equal((await server.lab('POST', '/api/lab/memory-clear')).status, 200);
  });
});

describe('request bodies', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  // {"ms":1} padded with JSON whitespace to exactly `size` bytes.
  function paddedBody(size) {
    const head = '{"ms":1';
    return `${head}${' '.repeat(size - head.length - 1)}}`;
  }

  test('a body of exactly 16 KiB is accepted', async () => {
    const body = paddedBody(16 * 1024);
    assert.equal(Buffer.byteLength(body), 16384);
    const res = await server.lab('POST', JAM, { body, headers: { 'content-type': 'application/json' } });
    assert.equal(res.status, 200, res.text);
  });

  test('a body one byte over 16 KiB -> 413', async () => {
    const res = await server.lab('POST', JAM, {
      body: paddedBody(16 * 1024 + 1),
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 413);
    assertErrorShape(res);
    assert.equal(res.json.error, 'payload_too_large');
  });

  test('a chunked body that grows past 16 KiB -> 413 without reading it all', async () => {
    const res = await new Promise((resolve, reject) => {
      const req = http.request(
        {
          host: '127.0.0.1',
          port: server.port,
          method: 'POST',
          path: JAM,
          headers: { 'x-lab-token': TOKEN, 'content-type': 'application/json', 'transfer-encoding': 'chunked' },
          agent: false,
        },
        (response) => {
          let text = '';
          response.setEncoding('utf8');
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve({ status: response.statusCode, headers: response.headers, text }));
        },
      );
      req.on('error', reject);
      // 20 KiB in 1 KiB chunks, and the request is never ended: the server must answer anyway.
      for (let i = 0; i < 20; i += 1) req.write(' '.repeat(1024));
    });
    assert.equal(res.status, 413);
    assert.equal(res.headers.connection, 'close');
    assert.equal(JSON.parse(res.text).error, 'payload_too_large');
    assert.equal((await server.request('GET', '/api/health')).status, 200);
  });

  test('malformed JSON -> 400 invalid_json', async () => {
    for (const body of ['{', '{"ms": 5,}', 'ms=5', '   ', '\u0000']) {
      const res = await server.lab('POST', JAM, { body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400, JSON.stringify(body));
      assertErrorShape(res);
      assert.equal(res.json.error, 'invalid_json');
    }
  });

  test('JSON that is not an object -> 400 invalid_json', async () => {
    for (const body of ['[]', '5', '"ms"', 'null', 'true']) {
      const res = await server.lab('POST', JAM, { body, headers: { 'content-type': 'application/json' } });
      assert.equal(res.status, 400, body);
      assert.equal(res.json.error, 'invalid_json');
    }
  });

  test('a non-empty body that is not application/json -> 415', async () => {
    for (const type of [undefined, 'text/plain', 'application/x-www-form-urlencoded']) {
      const headers = type ? { 'content-type': type } : {};
      const res = await server.lab('POST', JAM, { body: '{"ms":5}', headers });
      assert.equal(res.status, 415, String(type));
      assertErrorShape(res);
      assert.equal(res.json.error, 'unsupported_media_type');
    }
    const withCharset = await server.lab('POST', JAM, {
      body: '{"ms":5}',
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    assert.equal(withCharset.status, 200);
  });

  test('an empty body needs no content type', async () => {
    const res = await server.lab('POST', `${JAM}?ms=3`, { body: '', headers: { 'content-type': 'text/plain' } });
    assert.equal(res.status, 200);
  });

  test('__proto__ in a body is just an unknown parameter', async () => {
    const res = await server.lab('POST', JAM, {
      body: '{"__proto__": {"ms": 5}}',
      headers: { 'content-type': 'application/json' },
    });
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'unknown_parameter');
  });
});
