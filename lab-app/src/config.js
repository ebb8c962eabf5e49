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

// The guard fails closed: a process is "production" unless NODE_ENV is exactly one of these (lower
// case, nothing around it). `Development`, ` test`, `dev`, `staging`, an empty NODE_ENV and no NODE_ENV
// at all are production for the guard, so a misspelling can only ever make the lab harder to reach.
export const NON_PRODUCTION_NODE_ENVS = Object.freeze(['development', 'test']);

export function isProductionNodeEnv(nodeEnv) {
  return !NON_PRODUCTION_NODE_ENVS.includes(nodeEnv);
}

// A switch (LAB_ENABLE, LAB_ALLOW_PROD) is on only when its value is exactly `true`. Unset, empty, or a
// clear "off" (false, 0, no, off, in any case) is off without a word; anything else (TRUE, 1, yes,
// " true", on, ...) looks like an attempt to turn it on, stays off too, and is reported at start.
const CLEARLY_OFF = /^\s*(false|0|no|off)?\s*$/i;

function readSwitch(raw) {
  const on = raw === 'true';
  return { on, nearMiss: !on && raw !== undefined && !CLEARLY_OFF.test(raw) };
}

export function loadConfig(env = process.env) {
  const labToken = env.LAB_TOKEN ?? '';
  const enable = readSwitch(env.LAB_ENABLE);
  const allowProd = readSwitch(env.LAB_ALLOW_PROD);
  return Object.freeze({
    port: readPort(env.PORT),
    host: env.HOST || '0.0.0.0',
    nodeEnv: env.NODE_ENV ?? null,
    // What the guard goes by (see NON_PRODUCTION_NODE_ENVS).
    production: isProductionNodeEnv(env.NODE_ENV),
    labEnabled: enable.on,
    // Lab routes fail closed (503) when enabled without a usable token.
    labTokenUsable: labToken.length >= MIN_TOKEN_LENGTH,
    // Only the digest is kept: the guard compares digests, and nothing can log the token by accident.
    labTokenDigest: createHash('sha256').update(labToken).digest(),
    labAllowProd: allowProd.on,
    // Values of the two switches that were almost `true` (reported at start), as given.
    switchNearMisses: Object.freeze(
      [
        ['LAB_ENABLE', env.LAB_ENABLE, enable],
        ['LAB_ALLOW_PROD', env.LAB_ALLOW_PROD, allowProd],
      ]
        .filter(([, , read]) => read.nearMiss)
        .map(([name, value]) => ({ name, value })),
    ),
    artifactDir: env.LAB_ARTIFACT_DIR || os.tmpdir(),
    maxRetainedMb: readPositiveInteger('LAB_MAX_RETAINED_MB', env.LAB_MAX_RETAINED_MB, 2048),
    // The test-only fault switch (src/fault-switch.js); inert unless test-support/faults.js is present.
    fault: env.LAB_FAULT || null,
    faultInProduction: env.LAB_FAULT_IN_PRODUCTION === 'true',
  });
}

// NODE_ENV as a message shows it: `NODE_ENV='Production'`, or `NODE_ENV unset`.
export function describeNodeEnv(nodeEnv) {
  return nodeEnv === null || nodeEnv === undefined ? 'NODE_ENV unset' : `NODE_ENV=${JSON.stringify(nodeEnv)}`;
}

const SWITCH_EFFECT = {
  LAB_ENABLE: 'the /api/lab/* routes stay off (they answer 404)',
  LAB_ALLOW_PROD: 'lab routes in a production process stay refused (403)',
};

// Problems worth a warning at start; the server still starts (and fails closed).
export function configWarnings(config) {
  const warnings = [];
  for (const { name, value } of config.switchNearMisses) {
    warnings.push(
      `${name}=${JSON.stringify(value)} is not exactly "true", so it is off: ${SWITCH_EFFECT[name]}. ` +
        `To turn it on, set ${name}=true (lower case, no spaces); to leave it off, unset it.`,
    );
  }
  if (config.labEnabled && !config.labTokenUsable) {
    warnings.push(
      `LAB_ENABLE=true but LAB_TOKEN is empty or shorter than ${MIN_TOKEN_LENGTH} characters: ` +
        `every /api/lab/* route answers 503 until LAB_TOKEN is set to ${MIN_TOKEN_LENGTH}+ random characters ` +
        '(e.g. LAB_TOKEN=$(openssl rand -hex 16)) and the process is restarted.',
    );
  }
  if (config.labEnabled && config.production && !config.labAllowProd) {
    const exact = NON_PRODUCTION_NODE_ENVS.map((v) => `"${v}"`).join(' or ');
    warnings.push(
      `LAB_ENABLE=true with ${describeNodeEnv(config.nodeEnv)}, which the lab guard treats as production ` +
        `(only NODE_ENV exactly ${exact} is not): /api/lab/* routes answer 403 unless LAB_ALLOW_PROD=true is also set.`,
    );
  }
  return warnings;
}
