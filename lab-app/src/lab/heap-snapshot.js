// POST /api/lab/heap-snapshot: write a .heapsnapshot file that Chrome DevTools' Memory tab can load.
import { createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { HttpError } from '../http-errors.js';
import { artifactPath, ARTIFACT_STREAM_OPTIONS } from './artifacts.js';

let inProgress = false;
let snapshotsTotal = 0;
let last = null; // { path, bytes, createdAt } of the newest snapshot written

// The newest snapshot this process wrote (null before the first).
export function lastHeapSnapshot() {
  return last;
}

export function heapSnapshotInProgress() {
  return inProgress;
}

export function heapSnapshotsTotal() {
  return snapshotsTotal;
}

export async function heapSnapshot(params, config) {
  if (inProgress) {
    throw new HttpError(
      409,
      'heap_snapshot_in_progress',
      'A heap snapshot is already being written; wait for it to finish, then ask again.',
    );
  }
  inProgress = true;
  try {
    const startedAt = performance.now();
    const file = await artifactPath(config, 'heap', 'heapsnapshot');
    // Taking the snapshot stops the world; writing it out is streamed, so other requests run meanwhile
    // (and a second snapshot request in that window gets the 409 above).
    await pipeline(v8.getHeapSnapshot(), createWriteStream(file, ARTIFACT_STREAM_OPTIONS));
    const { size } = await stat(file);
    snapshotsTotal += 1;
    last = { path: file, bytes: size, createdAt: new Date().toISOString() };
    return { ok: true, path: file, bytes: size, durationMs: Math.round(performance.now() - startedAt) };
  } finally {
    inProgress = false;
  }
}
