// The app under study: no dependencies, Node >= 20. It answers on PORT (HOST), writes notes into
// LAB_ARTIFACT_DIR (the folder lab-runner gives it) and says so in its log.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';

const port = Number(process.env.PORT ?? 3000);
const host = process.env.HOST ?? '0.0.0.0';
const dir = process.env.LAB_ARTIFACT_DIR ?? '/tmp';
let notes = 0;

const server = http.createServer((req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.url === '/healthz') return send(200, { up: true });
  if (req.url === '/about') {
    return send(200, { greeting: process.env.GREETING ?? 'hi', version: '1.0.0' });
  }
  if (req.url === '/notes' && req.method === 'POST') {
    notes += 1;
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'note.json'), JSON.stringify({ notes }));
    console.log(`note ${notes} written`);
    return send(200, { notes });
  }
  return send(404, { error: 'nothing here' });
});
server.listen(port, host, () => console.log(`listening on ${host}:${port}`));
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
