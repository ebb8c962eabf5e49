// One JSON object per line: info on stdout, warnings and errors on stderr.
// Callers pass plain fields; nothing here knows about tokens, so never hand it one.

function write(stream, level, msg, fields) {
  stream.write(`${JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields })}\n`);
}

export function info(msg, fields = {}) {
  write(process.stdout, 'info', msg, fields);
}

export function warn(msg, fields = {}) {
  write(process.stderr, 'warn', msg, fields);
}

export function error(msg, fields = {}) {
  write(process.stderr, 'error', msg, fields);
}

// The access log line: time, method, path (never the query), status, duration.
export function access(fields) {
  process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
}
