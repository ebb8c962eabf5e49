// The fault switch: for lab-runner's own tests only, never for a deployment.
//
// LAB_FAULT=<name> breaks ONE behaviour of this app on purpose (the jam yields instead of blocking, the
// leak is reported but not kept, ...), so that a test can prove `lab-runner verify` notices an app
// that no longer teaches its lesson. The faults themselves are not in src/: they live in
// ../test-support/faults.js, which no image contains (lab-app/Dockerfile and the lab's `app.files`
// copy package.json and src/ only). A fault is honoured only when all of these hold:
//   - LAB_FAULT names one (an unknown name stops the process: a test that asks for a fault must get it);
//   - test-support/faults.js is there, next to src/;
//   - the guard does not count the process as production (NODE_ENV exactly development or test), or
//     LAB_FAULT_IN_PRODUCTION=true is also set: the explicit, test-only relaxation that lets the
//     production-mode parts of the lab (Parts 2 and 3) be run against a broken app.
// Otherwise LAB_FAULT is ignored, with one warning at start saying why. An honoured fault is announced
// at start too, so a log always shows that the app was broken on purpose.
import { access } from 'node:fs/promises';
import { ConfigError } from './config.js';

const FAULTS_MODULE = new URL('../test-support/faults.js', import.meta.url);

// The fault to apply ({ name, breaks, routes, guard, start }), or null; `warn` and `info` log a line.
export async function loadFault(config, { warn, info }) {
  if (!config.fault) return null;
  try {
    await access(FAULTS_MODULE);
  } catch {
    warn(
      `LAB_FAULT=${JSON.stringify(config.fault)} is ignored: the fault switch is for lab-runner's tests, and this ` +
        'app has no test-support/faults.js (no image or deployment does). Unset LAB_FAULT.',
    );
    return null;
  }
  if (config.production && !config.faultInProduction) {
    warn(
      `LAB_FAULT=${JSON.stringify(config.fault)} is ignored: this process counts as production, where faults ` +
        'are honoured only with the test-only LAB_FAULT_IN_PRODUCTION=true.',
    );
    return null;
  }
  const { FAULTS } = await import(FAULTS_MODULE);
  const fault = Object.hasOwn(FAULTS, config.fault) ? FAULTS[config.fault] : undefined;
  if (!fault) {
    throw new ConfigError(
      `LAB_FAULT must name a fault of test-support/faults.js (got '${config.fault}'); known: ${Object.keys(FAULTS).join(', ')}`,
    );
  }
  info(`LAB_FAULT=${config.fault}: this app is broken on purpose, for a test: ${fault.breaks}`, {
    fault: config.fault,
  });
  return { name: config.fault, ...fault };
}

// The route table with the fault's replacements: `routes` maps a path to a function that takes the
// route's own function and returns the one to run instead.
export function applyFaultToRoutes(routes, fault) {
  if (!fault?.routes) return routes;
  const patched = new Map(routes);
  for (const [path, replace] of Object.entries(fault.routes)) {
    const route = routes.get(path);
    if (!route) throw new Error(`fault ${fault.name} replaces ${path}, which is not a route`);
    patched.set(path, { ...route, run: replace(route.run) });
  }
  return patched;
}
