// POST /api/lab/cpu-profile: sample this process's own CPU for `seconds` through an in-process
// inspector session and write a .cpuprofile file (Chrome DevTools' Performance tab loads it).
// The wait is asynchronous, so the process keeps serving requests: jam the loop meanwhile and the
// jam is what the profile shows.
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { HttpError } from '../http-errors.js';
import { artifactPath, ARTIFACT_WRITE_OPTIONS } from './artifacts.js';

let inProgress = false;
let stopEarly = null; // AbortController of the running profile
let last = null; // { path, bytes, sampleCount, createdAt } of the newest profile written

export function cpuProfileInProgress() {
  return inProgress;
}

// The newest profile this process wrote (null before the first): how a participant, or a check,
// finds the file to copy out.
export function lastCpuProfile() {
  return last;
}

// On shutdown: end the wait now, so the running profile is written and answered at once.
export function stopCpuProfileEarly() {
  stopEarly?.abort();
}

async function waitUnlessStopped(ms, signal) {
  try {
    await sleep(ms, undefined, { signal });
  } catch (err) {
    if (err.name !== 'AbortError') throw err;
  }
}

export async function cpuProfile({ seconds }, config) {
  if (inProgress) {
    throw new HttpError(
      409,
      'cpu_profile_in_progress',
      'A CPU profile is already being captured; wait for it to finish, then ask again.',
    );
  }
  inProgress = true;
  stopEarly = new AbortController();
  const session = new Session();
  try {
    // The file name carries the start time; creating the directory first fails fast, not after the wait.
    const file = await artifactPath(config, 'cpu', 'cpuprofile');
    session.connect();
    const startedAt = performance.now();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
    await waitUnlessStopped(seconds * 1000, stopEarly.signal);
    const { profile } = await session.post('Profiler.stop');
    const durationMs = Math.round(performance.now() - startedAt);
    const json = JSON.stringify(profile);
    await writeFile(file, json, ARTIFACT_WRITE_OPTIONS);
    const sampleCount = profile.samples?.length ?? 0;
    last = { path: file, bytes: Buffer.byteLength(json), sampleCount, createdAt: new Date().toISOString() };
    return { ok: true, path: file, durationMs, sampleCount, seconds };
  } finally {
    // Always: a connected session keeps the profiler (and its sampling thread) running.
    session.disconnect();
    stopEarly = null;
    inProgress = false;
  }
}
