// GET /api/health: always on, no token. Answers as soon as the event loop is free.
export function health() {
  return { status: 'ok', uptimeSeconds: Math.round(process.uptime() * 1000) / 1000, pid: process.pid };
}
