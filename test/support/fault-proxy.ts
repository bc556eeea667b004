/**
 * A loopback HTTP proxy in front of a registry that injects faults: some requests are answered
 * with a 5xx and some connections are reset (seeded, so a run is reproducible), and an outage
 * resets every connection for a window: one given explicitly, or one that starts at the first
 * request a predicate picks (e.g. the first blob upload of compose). Counts what it did.
 * A world's config points at the proxy instead of the registry (see useProxy in
 * test/integration/faults.test.ts); everything else reads the registry directly.
 */
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { Socket } from 'node:net';

/** What the proxy did so far. */
export interface FaultCounts {
  /** Requests that reached the proxy outside an outage. */
  requests: number;
  /** Answered with a 5xx instead of being forwarded. */
  errors5xx: number;
  /** Connections reset instead of forwarding a request. */
  resets: number;
  /** Connections reset because an outage was on. */
  outageResets: number;
}

/** Options of {@link startFaultProxy}. */
export interface FaultProxyOptions {
  /** The registry, host:port. */
  target: string;
  /** Share of requests that fail (5xx and reset in turn). @default 0 */
  faultRate?: number;
  /** Seed of the fault choice. @default 1 */
  seed?: number;
  /** After a fault, this many requests pass before the next one may fail, so every retry can progress. @default 4 */
  cooldown?: number;
  /** Starts an outage of `outageMs` at the first request this picks (once). */
  outageAt?: (req: IncomingMessage) => boolean;
  outageMs?: number;
}

/** A running fault proxy. */
export interface FaultProxy {
  /** 127.0.0.1:<port>, what the world's config names instead of the registry. */
  host: string;
  counts: FaultCounts;
  /** When the outage started and ended (ms since the epoch), once they did. */
  outage: { startedAt?: number; endedAt?: number };
  /** Resolves when the outage (started by `outageAt` or {@link FaultProxy.startOutage}) is over. */
  outageOver: Promise<void>;
  /** Starts an outage of `ms` now. */
  startOutage(ms: number): void;
  close(): Promise<void>;
}

/** A small seeded generator (mulberry32): the same seed gives the same faults. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUSES = [500, 502, 503] as const;

/** Starts a fault proxy on a free loopback port. */
export async function startFaultProxy(opts: FaultProxyOptions): Promise<FaultProxy> {
  const [targetHost, targetPort] = opts.target.split(':') as [string, string];
  const random = seeded(opts.seed ?? 1);
  const cooldown = opts.cooldown ?? 4;
  const rate = opts.faultRate ?? 0;
  let quiet = 0;
  let outageUntil = 0;
  let outageArmed = !!opts.outageAt;
  const counts: FaultCounts = { requests: 0, errors5xx: 0, resets: 0, outageResets: 0 };
  const outage: FaultProxy['outage'] = {};
  const sockets = new Set<Socket>();
  let outageDone!: () => void;
  const outageOver = new Promise<void>((r) => (outageDone = r));

  const inOutage = () => Date.now() < outageUntil;
  const startOutage = (ms: number) => {
    outageArmed = false;
    outage.startedAt = Date.now();
    outageUntil = outage.startedAt + ms;
    for (const s of sockets) s.resetAndDestroy();
    setTimeout(() => {
      outage.endedAt = Date.now();
      outageDone();
    }, ms).unref();
  };

  const server: Server = createServer((req, res) => {
    if (outageArmed && opts.outageAt!(req)) startOutage(opts.outageMs ?? 0);
    if (inOutage()) {
      counts.outageResets++;
      req.socket.resetAndDestroy();
      return;
    }
    counts.requests++;
    if (quiet > 0) quiet--;
    else if (rate > 0) {
      const r = random();
      if (r < rate) {
        quiet = cooldown;
        // The two kinds take turns, so a run that meets two faults met both.
        if (counts.errors5xx <= counts.resets) {
          counts.errors5xx++;
          const status = STATUSES[counts.errors5xx % STATUSES.length]!;
          res.writeHead(status, { 'content-type': 'application/json', connection: 'close' });
          res.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected by the fault proxy' }] }));
          return;
        }
        counts.resets++;
        req.socket.resetAndDestroy();
        return;
      }
    }
    // The Host header stays the proxy's: the registry builds upload locations from it.
    const upstream = request(
      { host: targetHost, port: Number(targetPort), method: req.method, path: req.url, headers: req.headers },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.on('error', () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on('connection', (socket) => {
    if (inOutage()) {
      counts.outageResets++;
      socket.resetAndDestroy();
      return;
    }
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  return {
    host: `127.0.0.1:${port}`,
    counts,
    outage,
    outageOver,
    startOutage,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
