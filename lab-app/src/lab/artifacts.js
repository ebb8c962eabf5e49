// Where heap snapshots and CPU profiles are written: heap-<timestamp>-<pid>.heapsnapshot, cpu-....cpuprofile.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';

export async function artifactPath(config, prefix, extension) {
  await mkdir(config.artifactDir, { recursive: true });
  const timestamp = new Date().toISOString().replace(/[:.]/g, '-'); // 2025-01-31T12-00-00-000Z
  return path.join(config.artifactDir, `${prefix}-${timestamp}-${process.pid}.${extension}`);
}

// Artifacts hold the process's memory (a heap snapshot includes process.env, LAB_TOKEN too):
// readable by the owner only, and never overwritten ('wx'). (createWriteStream spells it `flags`,
// writeFile `flag`.)
export const ARTIFACT_STREAM_OPTIONS = { flags: 'wx', mode: 0o600 };
export const ARTIFACT_WRITE_OPTIONS = { flag: 'wx', mode: 0o600 };
