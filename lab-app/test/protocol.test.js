import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { TOKEN, startServer } from '../test-support/harness.js';

// Sends `raw` on a fresh connection and resolves with everything the server sent before closing.
function rawExchange(port, raw) {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const chunks = [];
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.setTimeout(5000, () => socket.destroy(new Error('no answer within 5 s')));
    socket.write(raw);
  });
}

function parse(text) {
  const [head, ...rest] = text.split('\r\n\r\n');
  const [statusLine, ...headerLines] = head.split('\r\n');
  const headers = Object.fromEntries(
    headerLines.map((line) => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
  );
  const body = rest.join('\r\n\r\n');
  return { status: Number(statusLine.split(' ')[1]), headers, body, json: JSON.parse(body) };
}

describe('requests that never reach a route still get a JSON error', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  const cases = [
    ['an invalid method', 'FOO /api/health HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_request'],
    ['a raw non-ASCII byte in the path', 'GET /api/h\u00e9alth HTTP/1.1\r\nHost: x\r\n\r\n', 400, 'bad_request'],
    ['a header name with a space', 'GET /api/health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n', 400, 'bad_request'],
    ['two Content-Lengths', 'POST /api/health HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab', 400, 'bad_request'],
    ['bare LF line ends', 'GET /api/health HTTP/1.1\nHost: x\n\n', 400, 'bad_request'],
    ['headers over 16 KiB', `GET /api/health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17000)}\r\n\r\n`, 431, 'headers_too_large'],
    ['HTTP/1.1 without Host', 'GET /api/health HTTP/1.1\r\n\r\n', 400, 'bad_request'],
    ['an Expect other than 100-continue', 'GET /api/health HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n', 417, 'expectation_failed'],
    ['CONNECT to an unknown path', 'CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n', 404, 'not_found'],
    ['CONNECT to a route', 'CONNECT /api/health HTTP/1.1\r\nHost: x\r\n\r\n', 405, 'method_not_allowed'],
  ];
  for (const [label, raw, status, code] of cases) {
    test(`${label} -> ${status} ${code}`, async () => {
      const res = parse(await rawExchange(server.port, raw));
      assert.equal(res.status, status, res.body);
      assert.equal(res.headers['content-type'], 'application/json; charset=utf-8');
      assert.equal(Number(res.headers['content-length']), Buffer.byteLength(res.body));
      assert.equal(res.headers.connection, 'close');
      assert.deepEqual(Object.keys(res.json), ['error', 'detail']);
      assert.equal(res.json.error, code);
    });
  }

  test('CONNECT to a route names its method in Allow', async () => {
    const res = parse(await rawExchange(server.port, 'CONNECT /api/lab/status HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(res.headers.allow, 'GET');
  });

  test('HTTP/1.0 needs no Host, and the server is still healthy after all of the above', async () => {
    const res = parse(await rawExchange(server.port, 'GET /api/health HTTP/1.0\r\n\r\n'));
    assert.equal(res.status, 200);
    assert.equal((await server.lab('GET', '/api/lab/status')).json.retainedBytes, 0);
  });

  test('the token is not needed to learn any of this, and it is never echoed', async () => {
    const res = await rawExchange(server.port, `FOO /api/lab/status HTTP/1.1\r\nHost: x\r\nx-lab-token: ${TOKEN}\r\n\r\n`);
    assert.ok(!res.includes(TOKEN), res);
  });
});

describe('CONNECT while the lab is disabled', () => {
  let server;
  before(async () => {
    server = await startServer({ env: { LAB_TOKEN: TOKEN } });
  });
  after(() => server.stop());

  test('a lab route answers 404 like an unknown path', async () => {
    const res = parse(await rawExchange(server.port, 'CONNECT /api/lab/status HTTP/1.1\r\nHost: x\r\n\r\n'));
    assert.equal(res.status, 404);
    assert.equal(res.json.error, 'not_found');
    assert.equal(res.headers.allow, undefined);
  });
});

describe('a body cut short', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  test('a bad chunk after the checks passed is a 400, not an internal error', async () => {
    const raw =
      `POST /api/lab/memory-clear HTTP/1.1\r\nHost: x\r\nx-lab-token: ${TOKEN}\r\n` +
      'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n';
    const res = parse(await rawExchange(server.port, raw));
    assert.equal(res.status, 400);
    assert.equal(res.json.error, 'bad_request');
  });

  test('a client that leaves in the middle of its body is not logged as an internal error', async () => {
    await new Promise((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: server.port });
      socket.on('error', reject);
      socket.on('close', resolve);
      socket.write(
        `POST /api/lab/memory-clear HTTP/1.1\r\nHost: x\r\nx-lab-token: ${TOKEN}\r\n` +
          'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"',
        () => setTimeout(() => socket.destroy(), 50),
      );
    });
    assert.equal((await server.request('GET', '/api/health')).status, 200);
    assert.ok(!server.stderr.includes('unexpected error'), server.stderr);
  });
});
