// Every error response has exactly this body: { "error": "<snake_case code>", "detail": "<sentence>" }.
import { STATUS_CODES } from 'node:http';

export class HttpError extends Error {
  constructor(status, code, detail, headers = {}) {
    super(detail);
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.headers = headers;
  }
}

// The same body for an unknown path and for a lab route while the lab is disabled,
// so a caller cannot tell that the lab exists.
export function notFound() {
  return new HttpError(404, 'not_found', 'There is no route at this path.');
}

export function sendJson(res, status, body, headers = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...headers,
  });
  res.end(payload);
}

export function sendError(res, err) {
  sendJson(res, err.status, { error: err.code, detail: err.detail }, err.headers);
}

// The same error as raw bytes, for the few answers written straight to a socket (no ServerResponse
// exists for a request Node could not parse, or for CONNECT). The connection is closed after it.
export function rawErrorResponse(err) {
  const payload = JSON.stringify({ error: err.code, detail: err.detail });
  const headers = {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(payload),
    'Cache-Control': 'no-store',
    ...err.headers,
    Connection: 'close',
  };
  const lines = Object.entries(headers).map(([name, value]) => `${name}: ${value}\r\n`);
  return `HTTP/1.1 ${err.status} ${STATUS_CODES[err.status] ?? 'Error'}\r\n${lines.join('')}\r\n${payload}`;
}
