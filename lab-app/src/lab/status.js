// GET /api/lab/status: what the lab is holding and doing right now.
import inspector from 'node:inspector';
import { retainedStats } from './memory.js';
import { cpuProfileInProgress, lastCpuProfile } from './cpu-profile.js';
import { heapSnapshotInProgress, lastHeapSnapshot } from './heap-snapshot.js';

export function labStatus(params, config) {
  const { retainedBufferCount, retainedBytes } = retainedStats();
  return {
    labEnabled: config.labEnabled,
    nodeEnv: config.nodeEnv,
    retainedBufferCount,
    retainedBytes,
    cpuProfileInProgress: cpuProfileInProgress(),
    heapSnapshotInProgress: heapSnapshotInProgress(),
    // The inspector's WebSocket URL once it is open (--inspect, or SIGUSR1 at run time), else null.
    inspectorUrl: inspector.url() ?? null,
    pid: process.pid,
    // Bytes, as process.memoryUsage() reports them: what a dashboard would show, without a scrape
    // (scraping /api/metrics resets the event-loop lag histogram, as prom-client does).
    memory: process.memoryUsage(),
    artifactDir: config.artifactDir,
    // The newest capture of each kind ({ path, bytes, ... } or null): what to copy out.
    lastCpuProfile: lastCpuProfile(),
    lastHeapSnapshot: lastHeapSnapshot(),
  };
}
