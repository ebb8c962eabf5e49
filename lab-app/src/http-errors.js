// Every error response has exactly this body: { "error": "<snake_case code>", "detail": "<sentence>" }.

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
