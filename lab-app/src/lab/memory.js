// POST /api/lab/memory-leak and /api/lab/memory-clear: hold Buffers on purpose, then let them go.
import v8 from 'node:v8';
import vm from 'node:vm';
import { HttpError } from '../http-errors.js';

const MIB = 1024 * 1024;

// The "leak": a module-level array that only memory-clear empties.
let retained = [];
let retainedBytes = 0;

export function retainedStats() {
  return { retainedBufferCount: retained.length, retainedBytes };
}

export function memoryLeak({ mb }, config) {
  const addedBytes = mb * MIB;
  const capBytes = config.maxRetainedMb * MIB;
  if (retainedBytes + addedBytes > capBytes) {
    throw new HttpError(
      409,
      'retention_cap_reached',
      `Retaining ${mb} MiB more would exceed the cap: ${retainedBytes / MIB} MiB is retained in ` +
        `${retained.length} buffers and LAB_MAX_RETAINED_MB is ${config.maxRetainedMb}. ` +
        'POST /api/lab/memory-clear to release it.',
    );
  }
  // Filled with a non-zero byte, so every page is written and the process's RSS really grows
  // (a zero-filled allocation can stay lazily mapped and barely move RSS).
  retained.push(Buffer.alloc(addedBytes, 0x6c));
  retainedBytes += addedBytes;
  return { ok: true, addedBytes, ...retainedStats() };
}

// V8 frees a Buffer's memory only when the garbage collector runs, which may be minutes away
// on an idle process. The lab wants "clear" to show at once in RSS and in nodejs_external_memory_bytes,
// so it asks for a collection. `gc` is not exposed unless Node starts with --expose-gc; setting the
// flag at run time and fetching `gc` from a fresh context gives the same function without a restart.
let collectGarbage;
function forceGc() {
  if (!collectGarbage) {
    v8.setFlagsFromString('--expose-gc');
    collectGarbage = vm.runInNewContext('gc');
  }
  // Twice, back to back. Measured on Node 20.20.2: after one full collection the buffers are freed
  // (process.memoryUsage().arrayBuffers drops) but `external` is only recounted by the next one.
  collectGarbage();
  collectGarbage();
}

export function memoryClear() {
  const releasedBuffers = retained.length;
  const releasedBytes = retainedBytes;
  retained = [];
  retainedBytes = 0;
  forceGc();
  return { ok: true, releasedBuffers, releasedBytes, retainedBytes: 0 };
}
