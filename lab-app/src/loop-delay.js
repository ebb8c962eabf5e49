// Event loop delay, per scrape window, for the nodejs_eventloop_lag_* metrics.
//
// prom-client reads perf_hooks.monitorEventLoopDelay() and calls reset() after each scrape. On Node 20
// the first delay after reset() is never recorded, so a jam that starts right after a scrape (within
// one 10 ms tick) is invisible in the next scrape's lag max. This keeps prom-client's numbers but
// closes a window by swapping in a new histogram; the clock keeps running, so no delay is dropped.
//
// Like monitorEventLoopDelay, a tick records the whole time since the previous one: about 10 ms on
// an idle loop, and the length of the jam after a jam.
import { createHistogram } from 'node:perf_hooks';

const RESOLUTION_MS = 10; // prom-client's default eventLoopMonitoringPrecision

let window = createHistogram();
let lastTick = process.hrtime.bigint();
let longestNs = 0n; // the longest delay since the process started: never reset

function tick() {
  const now = process.hrtime.bigint();
  const delay = now - lastTick; // nanoseconds
  window.record(delay);
  if (delay > longestNs) longestNs = delay;
  lastTick = now;
}
setInterval(tick, RESOLUTION_MS).unref();

// Returns the delays recorded since the previous call, and starts a new window.
export function takeLoopDelayWindow() {
  const closed = window;
  window = createHistogram();
  return closed;
}

// The longest delay recorded since the process started, in seconds. The same ticks as the windows,
// but no scrape resets it: what a check reads to judge a jam after a person's own scrape has closed
// the window their lag max came from.
export function longestLoopDelaySeconds() {
  return Number(longestNs) / 1e9;
}
