// Entry point: read the configuration, serve HTTP, stop cleanly on SIGTERM/SIGINT.
//
// There is deliberately no process.on('SIGUSR1') listener anywhere in this app: with none, SIGUSR1
// makes Node open its inspector on 127.0.0.1:9229 at run time (the lab's Part 3 relies on it), and any
// listener would replace that behaviour.
import http from 'node:http';
import { ConfigError, configWarnings, loadConfig } from './config.js';
import { connectRefusal, createRequestHandler } from './router.js';
import { answerClientError, answerConnect } from './protocol.js';
import { stopCpuProfileEarly } from './lab/cpu-profile.js';
import { loadFault } from './fault-switch.js';
import * as log from './log.js';

const SHUTDOWN_GRACE_MS = 5000;

function hostForUrl(address) {
  return address.includes(':') ? `[${address}]` : address;
}

async function main() {
  let config;
  let fault;
  try {
    config = loadConfig();
    for (const warning of configWarnings(config)) log.warn(warning);
    fault = await loadFault(config, log);
    if (fault?.config) config = Object.freeze(fault.config(config));
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    log.error(`invalid configuration: ${err.message}`);
    process.exitCode = 1;
    return;
  }
  fault?.start?.();

  const handleRequest = createRequestHandler(config, fault);
  // requireHostHeader: false: the router answers a missing Host itself, with a JSON body.
  const server = http.createServer({ requireHostHeader: false }, handleRequest);
  // Requests Node cannot parse, CONNECT, and an unmeetable Expect: JSON errors too (see protocol.js).
  server.on('clientError', answerClientError);
  server.on('connect', (req, socket) => answerConnect(req, socket, (url) => connectRefusal(url, config)));
  server.on('checkExpectation', handleRequest);

  server.on('error', (err) => {
    log.error(`cannot listen on ${config.host}:${config.port}: ${err.message}`);
    process.exit(1);
  });

  server.listen(config.port, config.host, () => {
    const { address, port } = server.address();
    log.info(`listening on http://${hostForUrl(address)}:${port}`, {
      pid: process.pid,
      node: process.version,
      labEnabled: config.labEnabled,
      nodeEnv: config.nodeEnv,
      production: config.production,
      ...(fault ? { fault: fault.name } : {}),
    });
  });

  let shuttingDown = false;
  function shutdown(signal) {
    if (shuttingDown) return;
    shuttingDown = true;
    log.info(`received ${signal}: closing the server, waiting for requests in flight`);

    // Stop accepting; idle keep-alive connections are closed now, busy ones after their response.
    server.close(() => {
      log.info('server closed, exiting');
      // Explicit exit: an attached debugger (DevTools, or a tunnel) would otherwise keep the process alive.
      process.exit(0);
    });
    server.closeIdleConnections();
    stopCpuProfileEarly();

    setTimeout(() => {
      log.error(`requests still in flight after ${SHUTDOWN_GRACE_MS} ms; forcing exit`);
      process.exit(1);
    }, SHUTDOWN_GRACE_MS).unref();
  }
  // Handling SIGTERM ourselves also matters when node is PID 1 in a container, where the default
  // action (terminate) does not apply.
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

await main();
