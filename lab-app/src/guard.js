// The checks a /api/lab/* request passes before its handler runs, in this order
// (the router has already answered 404 for a disabled lab and 405 for a wrong method):
//   1. the lab is enabled but has no usable token -> 503 (fail closed)
//   2. missing or wrong x-lab-token               -> 401
//   3. a production process without LAB_ALLOW_PROD -> 403; production is any NODE_ENV other than
//      exactly "development" or "test", unset included (config.js: fail closed)
import { createHash, timingSafeEqual } from 'node:crypto';
import { HttpError } from './http-errors.js';
import { describeNodeEnv, MIN_TOKEN_LENGTH } from './config.js';

export const TOKEN_HEADER = 'x-lab-token';

// Both sides are hashed first, so the comparison takes the same time whatever the given
// token's length, and timingSafeEqual always sees two 32-byte digests.
function tokenMatches(given, expectedDigest) {
  const givenDigest = createHash('sha256').update(given).digest();
  return timingSafeEqual(givenDigest, expectedDigest);
}

export function guardLabRequest(req, config) {
  if (!config.labTokenUsable) {
    throw new HttpError(
      503,
      'lab_token_not_configured',
      `The lab is enabled but LAB_TOKEN is empty or shorter than ${MIN_TOKEN_LENGTH} characters. ` +
        `Set LAB_TOKEN to at least ${MIN_TOKEN_LENGTH} random characters (e.g. $(openssl rand -hex 16)) and restart.`,
    );
  }

  const given = req.headers[TOKEN_HEADER];
  if (given === undefined || given === '') {
    throw new HttpError(401, 'unauthorized', `Send the lab token in the ${TOKEN_HEADER} header.`);
  }
  if (!tokenMatches(given, config.labTokenDigest)) {
    throw new HttpError(401, 'unauthorized', `The ${TOKEN_HEADER} header does not match LAB_TOKEN.`);
  }

  if (config.production && !config.labAllowProd) {
    throw new HttpError(
      403,
      'lab_disabled_in_production',
      `This process counts as production (${describeNodeEnv(config.nodeEnv)}; only NODE_ENV exactly ` +
        '"development" or "test" does not): lab routes also need LAB_ALLOW_PROD=true, ' +
        'a deliberate second switch for running the lab against a production-mode process.',
    );
  }
}
