// Test helpers: start the real server as a child process on a free port, talk to it over real HTTP,
// and read its Prometheus output. (Kept outside test/, where `node --test test/` would run it as a test file.)
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const APP_DIR = fileURLToPath(new URL('..', import.meta.url));
export const SERVER_JS = path.join(APP_DIR, 'src', 'server.js');
export const TOKEN = 'test-token-9f8e7d6c5b4a3210';
export const LAB_ROUTES = [
  ['GET', '/api/lab/status'],
  ['POST', '/api/lab/event-loop-jam'],
  ['POST', '/api/lab/memory-leak'],
  ['POST', '/api/lab/memory-clear'],
  ['POST', '/api/lab/heap-snapshot'],
  ['POST', '/api/lab/cpu-profile'],
];

// One HTTP request on its own connection (agent: false sends Connection: close), unless `agent` is given.
export function httpRequest({ port, method = 'GET', path: urlPath, headers = {}, body, agent = false }) {
  return new Promise((resolve, reject) => {
    const allHeaders = { ...headers };
    let payload = body;
    if (payload !== undefined && typeof payload !== 'string' && !Buffer.isBuffer(payload)) {
      payload = JSON.stringify(payload);
      allHeaders['content-type'] ??= 'application/json';
    }
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers: allHeaders, agent }, (res) => {
      const chunks = [];
      res.on('data', (chunk) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}

function childEnv(overrides, artifactDir) {
  const env = { ...process.env };
  // Nothing from the test runner's own environment may change how the server behaves.
  for (const name of Object.keys(env)) {
    if (name.startsWith('LAB_') || name === 'NODE_OPTIONS' || name === 'NODE_ENV' || name.startsWith('NODE_TEST')) {
      delete env[name];
    }
  }
  return { ...env, PORT: '0', HOST: '127.0.0.1', LAB_ARTIFACT_DIR: artifactDir, ...overrides };
}

// NODE_ENV=test: without it the guard counts the process as production (it fails closed, see
// src/config.js), and lab routes would answer 403.
export const LAB_ENV = { NODE_ENV: 'test', LAB_ENABLE: 'true', LAB_TOKEN: TOKEN };

// Starts `node [execArgv] src/server.js` and resolves once it printed its "listening on" line.
// `serverJs`: another copy of the app's entry (default: this app's src/server.js).
export async function startServer({ env = LAB_ENV, execArgv = [], serverJs = SERVER_JS } = {}) {
  const artifactDir = await mkdtemp(path.join(os.tmpdir(), 'lab-app-test-'));
  const child = spawn(process.execPath, [...execArgv, serverJs], {
    env: childEnv(env, artifactDir),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output = { stdout: '', stderr: '' };
  child.stdout.setEncoding('utf8').on('data', (text) => (output.stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text) => (output.stderr += text));
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));

  const listening = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${output.stderr}`)), 10_000);
    function check() {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(output.stdout);
      if (match) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        resolve(Number(match[1]));
      }
    }
    child.stdout.on('data', check);
    exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output.stderr}`));
    });
  });
  let port;
  try {
    port = await listening;
  } catch (err) {
    child.kill('SIGKILL');
    await rm(artifactDir, { recursive: true, force: true });
    throw err;
  }

  const server = {
    port,
    child,
    artifactDir,
    exited,
    get stdout() {
      return output.stdout;
    },
    get stderr() {
      return output.stderr;
    },
    request: (method, urlPath, options = {}) => httpRequest({ port, method, path: urlPath, ...options }),
    // A lab request with the right token.
    lab: (method, urlPath, options = {}) =>
      httpRequest({ port, method, path: urlPath, ...options, headers: { 'x-lab-token': TOKEN, ...options.headers } }),
    async metrics() {
      const res = await httpRequest({ port, path: '/api/metrics' });
      return parseExposition(res.text);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
      await rm(artifactDir, { recursive: true, force: true });
    },
  };
  return server;
}

// Resolves once `text` appears in the server's stderr (or rejects after timeoutMs).
export async function waitForStderr(server, pattern, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = pattern.exec(server.stderr);
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`stderr never matched ${pattern}:\n${server.stderr}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

// ---- a strict reader of the Prometheus text format 0.0.4 -------------------------------------------

const METRIC_NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_NAME = '[a-zA-Z_][a-zA-Z0-9_]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const VALUE = '(?:[+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?|NaN|[+-]Inf)';
const SAMPLE_LINE = new RegExp(
  `^(${METRIC_NAME})(\\{(?:${LABEL_NAME}=${LABEL_VALUE}(?:,${LABEL_NAME}=${LABEL_VALUE})*)?,?\\})? (${VALUE})(?: -?\\d+)?$`,
);
const LABEL_PAIR = new RegExp(`(${LABEL_NAME})=(${LABEL_VALUE})`, 'g');
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseValue(text) {
  if (text === 'NaN') return NaN;
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

function unescapeLabel(quoted) {
  return quoted.slice(1, -1).replace(/\\(["\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
}

// Throws on anything a Prometheus server would reject; returns Map(name -> { help, type, samples }).
export function parseExposition(text) {
  if (!text.endsWith('\n')) throw new Error('exposition must end with a newline');
  const families = new Map();
  const closed = new Set(); // families whose samples are over: one family's lines must be contiguous
  let current = null;
  const lines = text.slice(0, -1).split('\n');
  lines.forEach((line, index) => {
    const where = `line ${index + 1}: ${JSON.stringify(line)}`;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, keyword, name, rest] = meta;
      if (!new RegExp(`^${METRIC_NAME}$`).test(name)) throw new Error(`bad metric name, ${where}`);
      if (closed.has(name)) throw new Error(`${name} appears again after other families, ${where}`);
      if (current && current.name !== name) closed.add(current.name);
      let family = families.get(name);
      if (!family) {
        family = { name, help: undefined, type: undefined, samples: [] };
        families.set(name, family);
      }
      if (family.samples.length > 0) throw new Error(`${keyword} after samples of ${name}, ${where}`);
      if (keyword === 'HELP') {
        if (family.help !== undefined) throw new Error(`second HELP for ${name}, ${where}`);
        family.help = rest.replace(/\\([\\n])/g, (_, c) => (c === 'n' ? '\n' : c));
      } else {
        if (family.type !== undefined) throw new Error(`second TYPE for ${name}, ${where}`);
        if (!TYPES.has(rest)) throw new Error(`unknown TYPE ${rest}, ${where}`);
        family.type = rest;
      }
      current = family;
      return;
    }
    if (line.startsWith('#')) return; // a plain comment
    const sample = SAMPLE_LINE.exec(line);
    if (!sample) throw new Error(`unparseable sample, ${where}`);
    const [, sampleName, labelText = '', valueText] = sample;
    const labels = {};
    for (const [, labelName, quoted] of labelText.matchAll(LABEL_PAIR)) {
      if (Object.hasOwn(labels, labelName)) throw new Error(`repeated label ${labelName}, ${where}`);
      labels[labelName] = unescapeLabel(quoted);
    }
    if (!current) throw new Error(`sample before any HELP/TYPE, ${where}`);
    let familyName = sampleName;
    if (current.type === 'histogram' || current.type === 'summary') {
      familyName = sampleName.replace(/_(bucket|sum|count)$/, '');
      if (current.type === 'histogram' && sampleName.endsWith('_bucket') && !('le' in labels)) {
        throw new Error(`histogram bucket without le, ${where}`);
      }
    }
    if (familyName !== current.name) throw new Error(`sample of ${sampleName} under ${current.name}'s HELP/TYPE, ${where}`);
    if (current.help === undefined || current.type === undefined) throw new Error(`${current.name} lacks HELP or TYPE`);
    current.samples.push({ name: sampleName, labels, value: parseValue(valueText) });
  });
  return families;
}

// The value of one sample: the family's sample (with the given labels, if any).
export function sampleValue(families, sampleName, labels = {}) {
  for (const family of families.values()) {
    for (const sample of family.samples) {
      if (sample.name !== sampleName) continue;
      if (Object.entries(labels).every(([k, v]) => sample.labels[k] === v)) return sample.value;
    }
  }
  return undefined;
}
