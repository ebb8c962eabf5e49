// Strict parameter validation. A parameter comes from the query string or the JSON body, once.
// Anything that is not exactly an integer in range is refused with a sentence saying what is accepted;
// nothing is clamped or coerced.
import { HttpError } from './http-errors.js';

const DECIMAL_INTEGER = /^[1-9][0-9]*$/; // no sign, no leading zero, no '.', 'e', '0x' or spaces

// Echoed values are cut short: an error message is no place for 16 KiB of someone's input.
function show(text) {
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

// got: the value as the client wrote it: 'text' from a query string, JSON from a body ("5" is a string).
function invalid(name, rule, got) {
  return new HttpError(400, 'invalid_parameter', `${name} must be an integer from ${rule.min} to ${rule.max} (got ${got}).`);
}

function fromQuery(name, rule, text) {
  const got = `'${show(text)}'`;
  if (!DECIMAL_INTEGER.test(text)) throw invalid(name, rule, got);
  const value = Number(text);
  if (value < rule.min || value > rule.max) throw invalid(name, rule, got);
  return value;
}

function fromJson(name, rule, value) {
  // Only JSON numbers with an integer value: "2000" (a string), true, null or 1.5 are refused.
  const got = show(JSON.stringify(value));
  if (typeof value !== 'number' || !Number.isInteger(value)) throw invalid(name, rule, got);
  if (value < rule.min || value > rule.max) throw invalid(name, rule, got);
  return value;
}

function accepted(spec) {
  const names = Object.keys(spec);
  return names.length === 0 ? 'this route takes no parameters' : `this route accepts: ${names.join(', ')}`;
}

// spec: { ms: { min: 1, max: 60000, default: 2000 } }
// query: URLSearchParams; body: a plain object (already parsed).
// Returns { ms: 2000 } with every spec'd name present.
export function parseParams(spec, query, body) {
  const unknown = new Set();
  for (const name of query.keys()) if (!Object.hasOwn(spec, name)) unknown.add(name);
  for (const name of Object.keys(body)) if (!Object.hasOwn(spec, name)) unknown.add(name);
  if (unknown.size > 0) {
    const list = [...unknown].map((name) => `'${show(name)}'`).join(', ');
    throw new HttpError(400, 'unknown_parameter', `Unknown parameter ${list}; ${accepted(spec)}.`);
  }

  const params = {};
  for (const [name, rule] of Object.entries(spec)) {
    const inQuery = query.getAll(name);
    const inBody = Object.hasOwn(body, name);
    if (inQuery.length > 1) {
      throw new HttpError(
        400,
        'invalid_parameter',
        `${name} is repeated in the query string; give it once, as an integer from ${rule.min} to ${rule.max}.`,
      );
    }
    if (inQuery.length === 1 && inBody) {
      throw new HttpError(
        400,
        'invalid_parameter',
        `${name} is given in both the query string and the JSON body; give it once, ` +
          `as an integer from ${rule.min} to ${rule.max}.`,
      );
    }
    if (inQuery.length === 1) params[name] = fromQuery(name, rule, inQuery[0]);
    else if (inBody) params[name] = fromJson(name, rule, body[name]);
    else params[name] = rule.default;
  }
  return params;
}
