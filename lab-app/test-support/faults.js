// Faults for lab-runner's tests: each breaks ONE behaviour the lab teaches, the way someone who wanted
// `lab-runner verify` to pass against an app that no longer teaches would break it, and keeps every
// other behaviour (and the numbers the app reports about itself) looking right.
// tests/it/app_faults.rs runs verify against each and asserts which step catches it; docs/FAULTS.md
// lists them. Loaded only by src/fault-switch.js (LAB_FAULT=<name>), and never part of an image.
//
// A fault is { breaks, routes?, guard?, config?, start? }:
//   routes: { path: (run) => run' } replaces a route's function (run is the app's own);
//   guard:  (guardLabRequest) => guard' replaces the lab routes' guard;
//   config: (config) => config' changes the configuration the server runs with;
//   start:  () => void runs once at start.
import { copyFile, stat } from 'node:fs/promises';
import { createWriteStream } from 'node:fs';
import { randomUUID } from 'node:crypto';
import inspector from 'node:inspector';
import { performance } from 'node:perf_hooks';
import { pipeline } from 'node:stream/promises';
import { setImmediate as yieldToLoop, setTimeout as sleep } from 'node:timers/promises';
import { Worker } from 'node:worker_threads';
import { HttpError } from '../src/http-errors.js';
import { artifactPath, ARTIFACT_STREAM_OPTIONS } from '../src/lab/artifacts.js';

const MIB = 1024 * 1024;

// ---- helpers --------------------------------------------------------------------------------------

// Rewrites the value of an unlabelled sample line `name value` in Prometheus text.
function setSample(text, name, value) {
  return text.replace(new RegExp(`^${name} \\S+$`, 'm'), `${name} ${value}`);
}

function sampleOf(text, name) {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return match ? Number(match[1]) : undefined;
}

// A route function whose result passes through `change` (sync or async).
function after(change) {
  return (run) => async (params, config) => change(await run(params, config), params, config);
}

// Jams done by a fault's own jam function, reported in the metrics as the app's own would be.
const jams = { total: 0, lastSeconds: 0 };
function countJam(startedAt) {
  jams.total += 1;
  jams.lastSeconds = Math.round(performance.now() - startedAt) / 1000;
}
function withJamCounts(text) {
  const total = (sampleOf(text, 'lab_event_loop_jams_total') ?? 0) + jams.total;
  let patched = setSample(text, 'lab_event_loop_jams_total', total);
  if (jams.total > 0) patched = setSample(patched, 'lab_event_loop_jam_last_seconds', jams.lastSeconds);
  return patched;
}

// Buffers held by a fault's own leak, reported in the status and metrics as the app's own would be.
function withRetained(held) {
  return {
    status: after((status) => ({
      ...status,
      retainedBufferCount: status.retainedBufferCount + held.count,
      retainedBytes: status.retainedBytes + held.bytes,
    })),
    metrics: after((text) => {
      const bytes = (sampleOf(text, 'lab_retained_bytes') ?? 0) + held.bytes;
      const count = (sampleOf(text, 'lab_retained_buffers') ?? 0) + held.count;
      return setSample(setSample(text, 'lab_retained_bytes', bytes), 'lab_retained_buffers', count);
    }),
  };
}

function replaceInspectorUrl(replace) {
  return after((status) => ({ ...status, inspectorUrl: replace(status.inspectorUrl) }));
}

// ---- the faults -----------------------------------------------------------------------------------

const fakeLeak = { count: 0, bytes: 0 };
const keptLeak = { count: 0, bytes: 0, buffers: [], hidden: [] };
let firstSnapshot = null;
let frozenExternal;
const fakeTargetId = randomUUID();

export const FAULTS = {
  'inspector-closed': {
    breaks: 'the inspector that --inspect opened is closed again at start (nothing answers on 9229)',
    start: () => inspector.close(),
  },
  'inspector-url-wrong': {
    breaks: "/api/lab/status reports an inspectorUrl with another target's id than the inspector's",
    routes: {
      '/api/lab/status': replaceInspectorUrl((url) => url && url.replace(/[0-9a-f-]{36}$/, fakeTargetId)),
    },
  },
  'inspector-url-null': {
    breaks: '/api/lab/status reports inspectorUrl null even while the inspector is open',
    routes: { '/api/lab/status': replaceInspectorUrl(() => null) },
  },
  'debugger-attached-fake': {
    breaks: 'the app writes "Debugger attached." to its log at start, without any debugger',
    start: () => process.stderr.write('Debugger attached.\n'),
  },
  'jam-elsewhere': {
    breaks: 'the jam busy-loops in another function than blockEventLoop (what Part 1 steps through)',
    routes: {
      '/api/lab/event-loop-jam': () =>
        function spinElsewhere({ ms }) {
          const startedAt = performance.now();
          let iterations = 0;
          while (performance.now() < startedAt + ms) iterations += 1;
          countJam(startedAt);
          return { ok: true, requestedMs: ms, durationMs: Math.round(performance.now() - startedAt), iterations };
        },
      '/api/metrics': after(withJamCounts),
    },
  },
  'jam-yields': {
    breaks: 'the jam computes in 10 ms slices and yields to the event loop between them (nothing waits)',
    routes: {
      '/api/lab/event-loop-jam': () =>
        async function politeJam({ ms }) {
          const startedAt = performance.now();
          let iterations = 0;
          while (performance.now() < startedAt + ms) {
            const slice = performance.now() + 10;
            while (performance.now() < slice) iterations += 1;
            await yieldToLoop();
          }
          countJam(startedAt);
          return { ok: true, requestedMs: ms, durationMs: Math.round(performance.now() - startedAt), iterations };
        },
      '/api/metrics': after(withJamCounts),
    },
  },
  'jam-not-counted': {
    breaks: 'lab_event_loop_jams_total stays 0',
    routes: { '/api/metrics': after((text) => setSample(text, 'lab_event_loop_jams_total', 0)) },
  },
  'lag-metrics-flat': {
    breaks: 'every event-loop delay gauge reads 0 (the loop-delay monitor records nothing)',
    routes: {
      '/api/metrics': after((text) =>
        ['min', 'max', 'mean', 'stddev', 'p50', 'p90', 'p99']
          .map((stat) => `nodejs_eventloop_lag_${stat}_seconds`)
          .concat(['nodejs_eventloop_lag_seconds', 'lab_event_loop_delay_max_seconds'])
          .reduce((patched, name) => setSample(patched, name, 0), text),
      ),
    },
  },
  'lag-max-flat': {
    breaks: 'nodejs_eventloop_lag_max_seconds alone reads 0, whatever the loop did',
    routes: { '/api/metrics': after((text) => setSample(text, 'nodejs_eventloop_lag_max_seconds', 0)) },
  },
  'lab-always-on': {
    breaks: 'the lab routes answer whatever LAB_ENABLE says',
    config: (config) => ({ ...config, labEnabled: true }),
  },
  'token-accepts-anything': {
    breaks: 'an enabled lab accepts any x-lab-token, or none',
    guard: (guardLabRequest) => (req, config) => {
      // The 503 of a missing LAB_TOKEN and the production gate still apply; the token is not compared.
      if (!config.labTokenUsable) return guardLabRequest(req, config);
      if (config.production && !config.labAllowProd) {
        throw new HttpError(403, 'lab_disabled_in_production', 'lab routes also need LAB_ALLOW_PROD=true');
      }
      return undefined;
    },
  },
  'production-gate-open': {
    breaks: 'a production process runs the lab routes without LAB_ALLOW_PROD (the second switch is ignored)',
    guard: (guardLabRequest) => (req, config) => guardLabRequest(req, { ...config, labAllowProd: true }),
  },
  'profile-misses-jam': {
    breaks: 'the CPU profile waits out its seconds first, then samples one idle second',
    routes: {
      '/api/lab/cpu-profile': (run) => async (params, config) => {
        await sleep(params.seconds * 1000);
        return { ...(await run({ seconds: 1 }, config)), seconds: params.seconds };
      },
    },
  },
  'leak-not-kept': {
    breaks: 'memory-leak reports the Buffer as retained but never allocates it',
    routes: {
      '/api/lab/memory-leak': () => ({ mb }) => {
        fakeLeak.count += 1;
        fakeLeak.bytes += mb * MIB;
        return { ok: true, addedBytes: mb * MIB, retainedBufferCount: fakeLeak.count, retainedBytes: fakeLeak.bytes };
      },
      '/api/lab/memory-clear': after((result) => {
        const released = { releasedBuffers: fakeLeak.count, releasedBytes: fakeLeak.bytes };
        fakeLeak.count = 0;
        fakeLeak.bytes = 0;
        return { ...result, ...released };
      }),
      '/api/lab/status': withRetained(fakeLeak).status,
      '/api/metrics': withRetained(fakeLeak).metrics,
    },
  },
  'clear-keeps-buffers': {
    breaks: 'memory-clear reports the Buffers released (and retained 0) but keeps them',
    routes: {
      '/api/lab/memory-leak': () => ({ mb }) => {
        keptLeak.buffers.push(Buffer.alloc(mb * MIB, 0x6c));
        keptLeak.count += 1;
        keptLeak.bytes += mb * MIB;
        return { ok: true, addedBytes: mb * MIB, retainedBufferCount: keptLeak.count, retainedBytes: keptLeak.bytes };
      },
      '/api/lab/memory-clear': () => () => {
        const released = { releasedBuffers: keptLeak.count, releasedBytes: keptLeak.bytes };
        keptLeak.hidden.push(...keptLeak.buffers);
        keptLeak.buffers = [];
        keptLeak.count = 0;
        keptLeak.bytes = 0;
        return { ok: true, ...released, retainedBytes: 0 };
      },
      '/api/lab/status': withRetained(keptLeak).status,
      '/api/metrics': withRetained(keptLeak).metrics,
    },
  },
  'external-metric-frozen': {
    breaks: 'nodejs_external_memory_bytes keeps the value of the first scrape',
    routes: {
      '/api/metrics': after((text) => {
        frozenExternal ??= sampleOf(text, 'nodejs_external_memory_bytes');
        return setSample(text, 'nodejs_external_memory_bytes', frozenExternal);
      }),
    },
  },
  'snapshot-other-heap': {
    breaks: "heap-snapshot writes a valid snapshot of a worker thread's heap, which holds none of the Buffers",
    routes: {
      '/api/lab/heap-snapshot': () => async (params, config) => {
        const startedAt = performance.now();
        const file = await artifactPath(config, 'heap', 'heapsnapshot');
        const worker = new Worker('setInterval(() => {}, 1000);', { eval: true });
        try {
          await new Promise((resolve) => worker.once('online', resolve));
          await pipeline(await worker.getHeapSnapshot(), createWriteStream(file, ARTIFACT_STREAM_OPTIONS));
        } finally {
          await worker.terminate();
        }
        const { size } = await stat(file);
        return { ok: true, path: file, bytes: size, durationMs: Math.round(performance.now() - startedAt) };
      },
    },
  },
  'snapshot-stale': {
    breaks: 'heap-snapshot writes the first snapshot again under a new name every later time',
    routes: {
      '/api/lab/heap-snapshot': (run) => async (params, config) => {
        if (!firstSnapshot) {
          const result = await run(params, config);
          firstSnapshot = result.path;
          return result;
        }
        const file = await artifactPath(config, 'heap', 'heapsnapshot');
        await copyFile(firstSnapshot, file);
        const { size } = await stat(file);
        return { ok: true, path: file, bytes: size, durationMs: 1 };
      },
    },
  },
  'inspector-open-at-start': {
    breaks: 'the app opens its inspector on 127.0.0.1:9229 at start, in production',
    start: () => inspector.open(9229, '127.0.0.1'),
  },
  'sigusr1-ignored': {
    breaks: 'a SIGUSR1 listener is installed, so SIGUSR1 no longer opens the inspector',
    start: () => process.on('SIGUSR1', () => {}),
  },
};
