// Answers for what never reaches a route's checks: bytes Node cannot parse as HTTP, and CONNECT.
// Node's own answers to these have no body (or no answer at all, for CONNECT); these send the same
// statuses with the JSON error body every other error has, then close the connection.
import http from 'node:http';
import { HttpError, notFound, rawErrorResponse } from './http-errors.js';
import * as log from './log.js';

// The status and error for a request Node's parser refused (the codes Node's default handler maps).
export function parseFailure(err) {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return new HttpError(
        431,
        'headers_too_large',
        `The request line and headers are larger than ${http.maxHeaderSize} bytes.`,
      );
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return new HttpError(413, 'payload_too_large', 'The chunk extensions of the request body are too large.');
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return new HttpError(408, 'request_timeout', 'The request was not received in time.');
    default:
      return new HttpError(
        400,
        'bad_request',
        `The request is not valid HTTP/1.1${err.reason ? `: ${String(err.reason).slice(0, 80)}` : ''}.`,
      );
  }
}

// server.on('clientError'): there is no request or response object, so the answer is written to the
// socket as bytes. As in Node's default handler, nothing is written after a response has begun on
// this connection (it would corrupt it), or to a socket the client already reset.
export function answerClientError(err, socket) {
  const inFlight = socket._httpMessage;
  if (err.code === 'ECONNRESET' || !socket.writable || (inFlight && inFlight.headersSent)) {
    socket.destroy();
    return;
  }
  const refusal = parseFailure(err);
  log.access({ method: null, path: null, status: refusal.status, durationMs: 0, error: refusal.code });
  socket.write(rawErrorResponse(refusal), () => socket.destroy());
}

// server.on('connect'): CONNECT gets the answer any other method would on that path — 404 for what is
// not a route (a disabled lab's routes included), else 405 naming the route's method.
export function answerConnect(req, socket, lookup) {
  const refusal = lookup(req.url) ?? notFound();
  log.access({ method: req.method, path: null, status: refusal.status, durationMs: 0 });
  socket.on('error', () => socket.destroy());
  socket.write(rawErrorResponse(refusal), () => socket.destroy());
}
