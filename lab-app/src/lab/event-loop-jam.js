// POST /api/lab/event-loop-jam: keep the only JavaScript thread busy for `ms` milliseconds.
// While blockEventLoop runs, this process answers nothing else: not /api/health, not /api/metrics.
import { performance } from 'node:perf_hooks';

let jamsTotal = 0;
let lastJamSeconds = 0;

export function eventLoopJamsTotal() {
  return jamsTotal;
}

// How long the most recent jam held the loop. Unlike nodejs_eventloop_lag_max_seconds, which every
// scrape resets, this stays until the next jam: a dashboard (or a check) can read it at any time.
export function lastEventLoopJamSeconds() {
  return lastJamSeconds;
}

// Part 1 puts its breakpoint in here, and the CPU profile of a jam should show this function
// with most of the samples: the busy work is this loop's own arithmetic, not a helper it calls.
// A V8 quirk to know when reading a profile: samples in optimized code that was compiled before
// the profiler started are credited to the caller, eventLoopJam below. On Node 20 that is the usual
// case for every jam after a process's first, so match the jam by this file, not by name alone.
export function blockEventLoop(ms) {
  const startedAt = performance.now();
  const deadline = startedAt + ms;
  let iterations = 0;
  let accumulator = 0;
  while (performance.now() < deadline) {
    // A thousand square roots between two clock reads: nearly all the time is spent on this line.
    for (let i = 0; i < 1000; i += 1) {
      accumulator += Math.sqrt(iterations + i);
    }
    iterations += 1000;
  }
  const durationMs = Math.round(performance.now() - startedAt);
  // Keeps the arithmetic observable, so the compiler cannot drop it as dead code.
  if (accumulator < 0) throw new Error('unreachable');
  return { iterations, durationMs };
}

export function eventLoopJam({ ms }) {
  const { iterations, durationMs } = blockEventLoop(ms);
  jamsTotal += 1;
  lastJamSeconds = durationMs / 1000;
  return { ok: true, requestedMs: ms, durationMs, iterations };
}
