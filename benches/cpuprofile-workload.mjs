// A busy Node process for lab-runner's analyze bench: a mix of functions (JSON, regular expressions,
// sorting, hashing, string building, an event-loop jam) called from a few entry points, so that its
// CPU profile has a realistic number of distinct frames and stacks.
//
//   node --cpu-prof --cpu-prof-dir DIR cpuprofile-workload.mjs SECONDS
import { createHash } from 'node:crypto';

const seconds = Number(process.argv[2] ?? 60);
const until = Date.now() + seconds * 1000;

function jam(ms) {
  const end = Date.now() + ms;
  let x = 0;
  while (Date.now() < end) x += Math.sqrt(x + 1);
  return x;
}

function makeRecords(n) {
  const records = [];
  for (let i = 0; i < n; i++) {
    records.push({ id: i, name: `user-${i}`, email: `user${i}@example.test`, score: (i * 7919) % 1000 });
  }
  return records;
}

function roundTripJson(records) {
  return JSON.parse(JSON.stringify(records)).length;
}

function validateEmails(records) {
  const pattern = /^[a-z]+\d*@[a-z]+\.[a-z]+$/;
  let valid = 0;
  for (const r of records) if (pattern.test(r.email)) valid++;
  return valid;
}

function sortByScore(records) {
  return [...records].sort((a, b) => a.score - b.score || a.id - b.id)[0].id;
}

function hashAll(records) {
  const hash = createHash('sha256');
  for (const r of records) hash.update(r.name);
  return hash.digest('hex');
}

function renderTable(records) {
  let html = '<table>';
  for (const r of records.slice(0, 200)) html += `<tr><td>${r.id}</td><td>${r.name}</td></tr>`;
  return (html + '</table>').length;
}

function fib(n) {
  return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

const handlers = [
  () => roundTripJson(makeRecords(2000)),
  () => validateEmails(makeRecords(3000)),
  () => sortByScore(makeRecords(3000)),
  () => hashAll(makeRecords(2000)),
  () => renderTable(makeRecords(500)),
  () => fib(22),
  () => jam(20),
];

function handleRequest(i) {
  return handlers[i % handlers.length]();
}

function tick(i) {
  if (Date.now() >= until) return;
  for (let j = 0; j < 5; j++) handleRequest(i + j);
  setImmediate(() => tick(i + 5));
}

tick(0);
