// Every request goes through handleRequest, top to bottom:
//   unknown path -> 404; lab route while LAB_ENABLE != "true" -> the same 404; wrong method -> 405;
//   lab routes: token configured (503), token (401), production (403), body (413/415/400), parameters (400);
//   then the route's own function, whose result is the 200 response.
import { performance } from 'node:perf_hooks';
import { HttpError, notFound, sendError, sendJson } from './http-errors.js';
import { readJsonBody } from './body.js';
import { parseParams } from './params.js';
import { guardLabRequest } from './guard.js';
import { applyFaultToRoutes } from './fault-switch.js';
import { CONTENT_TYPE as METRICS_CONTENT_TYPE } from './exposition.js';
import { observeHttpRequest, renderMetrics } from './metrics.js';
import * as log from './log.js';
import { health } from './health.js';
import { labStatus } from './lab/status.js';
import { eventLoopJam } from './lab/event-loop-jam.js';
import { memoryClear, memoryLeak } from './lab/memory.js';
import { heapSnapshot } from './lab/heap-snapshot.js';
import { cpuProfile } from './lab/cpu-profile.js';

const ROUTES = new Map(
  [
    { path: '/api/health', method: 'GET', run: health },
    { path: '/api/metrics', method: 'GET', run: renderMetrics, contentType: METRICS_CONTENT_TYPE },
    { path: '/api/lab/status', method: 'GET', lab: true, params: {}, run: labStatus },
    {
      path: '/api/lab/event-loop-jam',
      method: 'POST',
      lab: true,
      params: { ms: { min: 1, max: 60000, default: 2000 } },
      run: eventLoopJam,
    },
    {
      path: '/api/lab/memory-leak',
      method: 'POST',
      lab: true,
      params: { mb: { min: 1, max: 1024, default: 64 } },
      run: memoryLeak,
    },
    { path: '/api/lab/memory-clear', method: 'POST', lab: true, params: {}, run: memoryClear },
    { path: '/api/lab/heap-snapshot', method: 'POST', lab: true, params: {}, run: heapSnapshot },
    {
      path: '/api/lab/cpu-profile',
      method: 'POST',
      lab: true,
      params: { seconds: { min: 1, max: 120, default: 30 } },
      run: cpuProfile,
    },
  ].map((route) => [route.path, route]),
);

// The path and query exactly as sent: no URL resolution, so "//api/health" is not mistaken for a host.
function splitUrl(url) {
  const q = url.indexOf('?');
  if (q === -1) return { pathname: url, query: new URLSearchParams() };
  return { pathname: url.slice(0, q), query: new URLSearchParams(url.slice(q + 1)) };
}

function sendText(res, contentType, text) {
  res.writeHead(200, {
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  res.end(text);
}

function methodNotAllowed(route, method) {
  return new HttpError(405, 'method_not_allowed', `${route.path} accepts ${route.method} only (got ${method}).`, {
    Allow: route.method,
  });
}

// Check 0, before the path is looked at: what HTTP/1.1 itself requires. (The server is created with
// requireHostHeader: false so that a missing Host gets this JSON answer rather than Node's empty 400;
// an Expect other than 100-continue arrives here through the 'checkExpectation' event.)
function protocolRefusal(req) {
  if (req.httpVersion === '1.1' && req.headers.host === undefined) {
    return new HttpError(400, 'bad_request', 'An HTTP/1.1 request needs a Host header.', { Connection: 'close' });
  }
  const expect = req.headers.expect;
  if (expect !== undefined && expect.toLowerCase() !== '100-continue') {
    return new HttpError(417, 'expectation_failed', 'The only Expect this server meets is 100-continue.', {
      Connection: 'close',
    });
  }
  return null;
}

// What CONNECT to `url` is answered with (null: not a route): the same order as every other method.
export function connectRefusal(url, config) {
  const route = ROUTES.get(splitUrl(url).pathname);
  if (!route || (route.lab && !config.labEnabled)) return null;
  return methodNotAllowed(route, 'CONNECT');
}

async function respond(req, res, route, query, config, guard) {
  try {
    const refusal = protocolRefusal(req);
    if (refusal) throw refusal;
    // A disabled lab looks exactly like no lab.
    if (!route || (route.lab && !config.labEnabled)) throw notFound();
    if (req.method !== route.method) throw methodNotAllowed(route, req.method);

    let params = {};
    if (route.lab) {
      guard(req, config);
      const body = await readJsonBody(req);
      params = parseParams(route.params, query, body);
    }

    const result = await route.run(params, config);
    if (route.contentType) sendText(res, route.contentType, result);
    else sendJson(res, 200, result);
  } catch (caught) {
    let err = caught;
    if (!(err instanceof HttpError)) {
      log.error('unexpected error while handling a request', {
        method: req.method,
        path: route?.path ?? 'unmatched',
        stack: String(caught?.stack ?? caught),
      });
      err = new HttpError(500, 'internal_error', 'The server failed to handle this request; see its log.');
    }
    if (res.headersSent) res.destroy();
    else sendError(res, err);
  }
}

// `fault` (src/fault-switch.js) is null except in lab-runner's fault tests.
export function createRequestHandler(config, fault = null) {
  const routes = applyFaultToRoutes(ROUTES, fault);
  const guard = fault?.guard ? fault.guard(guardLabRequest) : guardLabRequest;
  return function handleRequest(req, res) {
    const startedAt = performance.now();
    const { pathname, query } = splitUrl(req.url);
    const route = routes.get(pathname);
    // The metrics' route label names a route only when it is visible, so /api/metrics does not reveal
    // a disabled lab, and random paths cannot grow the number of series.
    const routeLabel = route && (!route.lab || config.labEnabled) ? route.path : 'unmatched';

    res.on('close', () => {
      const seconds = (performance.now() - startedAt) / 1000;
      observeHttpRequest(req.method, routeLabel, res.statusCode, seconds);
      log.access({
        method: req.method,
        path: pathname.length > 200 ? `${pathname.slice(0, 200)}...` : pathname,
        status: res.statusCode,
        durationMs: Math.round(seconds * 1e4) / 10,
        ...(res.writableFinished ? {} : { aborted: true }),
      });
    });

    respond(req, res, route, query, config, guard).catch((err) => {
      log.error('failed to send a response', { stack: String(err?.stack ?? err) });
      res.destroy();
    });
  };
}
