// Configuration comes from the environment only, read once at start.
// A value that cannot be used stops the process with a message, rather than being guessed.
import { createHash } from 'node:crypto';
import os from 'node:os';

export const MIN_TOKEN_LENGTH = 16;

export class ConfigError extends Error {}

function readPort(raw) {
  if (raw === undefined || raw === '') return 3001;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535) {
    throw new ConfigError(`PORT must be an integer from 0 to 65535 (got '${raw}'); 0 picks a free port`);
  }
  return Number(raw);
}

function readPositiveInteger(name, raw, fallback) {
  if (raw === undefined || raw === '') return fallback;
  if (!/^[1-9]\d{0,8}$/.test(raw)) {
    throw new ConfigError(`${name} must be a positive integer (got '${raw}')`);
  }
  return Number(raw);
}

export function loadConfig(env = process.env) {
  const labToken = env.LAB_TOKEN ?? '';
  const labEnabled = env.LAB_ENABLE === 'true';
  return Object.freeze({
    port: readPort(env.PORT),
    host: env.HOST || '0.0.0.0',
    nodeEnv: env.NODE_ENV ?? null,
    labEnabled,
    // Lab routes fail closed (503) when enabled without a usable token.
    labTokenUsable: labToken.length >= MIN_TOKEN_LENGTH,
    // Only the digest is kept: the guard compares digests, and nothing can log the token by accident.
    labTokenDigest: createHash('sha256').update(labToken).digest(),
    labAllowProd: env.LAB_ALLOW_PROD === 'true',
    artifactDir: env.LAB_ARTIFACT_DIR || os.tmpdir(),
    maxRetainedMb: readPositiveInteger('LAB_MAX_RETAINED_MB', env.LAB_MAX_RETAINED_MB, 2048),
  });
}

// Problems worth a warning at start; the server still starts (and fails closed).
export function configWarnings(config) {
  const warnings = [];
  if (config.labEnabled && !config.labTokenUsable) {
    warnings.push(
      `LAB_ENABLE=true but LAB_TOKEN is empty or shorter than ${MIN_TOKEN_LENGTH} characters: ` +
        `every /api/lab/* route answers 503 until LAB_TOKEN is set to ${MIN_TOKEN_LENGTH}+ random characters ` +
        '(e.g. LAB_TOKEN=$(openssl rand -hex 16)) and the process is restarted.',
    );
  }
  if (config.labEnabled && config.nodeEnv === 'production' && !config.labAllowProd) {
    warnings.push(
      'LAB_ENABLE=true with NODE_ENV=production: /api/lab/* routes answer 403 unless LAB_ALLOW_PROD=true is also set.',
    );
  }
  return warnings;
}
