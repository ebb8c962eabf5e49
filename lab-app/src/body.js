// Reads a small JSON request body without ever buffering more than the limit.
import { HttpError } from './http-errors.js';

export const BODY_LIMIT_BYTES = 16 * 1024;

function tooLarge() {
  // Connection: close, because the rest of an oversized body is never read.
  return new HttpError(
    413,
    'payload_too_large',
    `The request body is larger than ${BODY_LIMIT_BYTES} bytes; lab parameters fit in a few bytes of JSON.`,
    { Connection: 'close' },
  );
}

function readRaw(req, limit) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    function onData(chunk) {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.pause(); // stop reading; Node discards the rest once the 413 is sent
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    }
    function onEnd() {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    }
    function onError() {
      cleanup();
      // The connection closed (or stopped being valid HTTP) before the body ended: the client's doing,
      // not an internal error, and there is nobody left to answer.
      reject(new HttpError(400, 'bad_request', 'The connection closed before the request body ended.'));
    }
    function cleanup() {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

// Resolves to a plain object: {} for an empty body, the parsed object otherwise.
export async function readJsonBody(req, limit = BODY_LIMIT_BYTES) {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw tooLarge();

  const raw = await readRaw(req, limit);
  if (raw.length === 0) return {};

  const contentType = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (contentType !== 'application/json') {
    throw new HttpError(
      415,
      'unsupported_media_type',
      `A request body must be JSON sent with Content-Type: application/json (got '${contentType || 'none'}'); ` +
        'or pass the parameters in the query string instead.',
    );
  }

  let parsed;
  try {
    parsed = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, 'invalid_json', `The request body is not valid JSON: ${err.message}.`);
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new HttpError(400, 'invalid_json', 'The request body must be a JSON object, e.g. {"ms": 2000}.');
  }
  return parsed;
}
