/**
 * The fault suite's registry proxy (test/support/fault-proxy.ts) against a local HTTP server:
 * it forwards requests with their bodies and the client's Host header, answers some with a 5xx,
 * resets some connections, and resets every connection during an outage.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startFaultProxy } from '../support/fault-proxy.ts';

async function upstream() {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => res.end(JSON.stringify({ method: req.method, url: req.url, host: req.headers.host, body })));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { host: `127.0.0.1:${(server.address() as { port: number }).port}`, close: () => server.close() };
}

/** One request through the proxy: its status, or the network error's code. */
async function call(host: string, init?: RequestInit): Promise<number | string> {
  try {
    const res = await fetch(`http://${host}/v2/x/blobs/uploads/`, init);
    await res.arrayBuffer();
    return res.status;
  } catch (err) {
    return String(((err as Error).cause as NodeJS.ErrnoException)?.code ?? err);
  }
}

test('forwards method, path, body and the Host header the client used', async () => {
  const up = await upstream();
  const proxy = await startFaultProxy({ target: up.host });
  try {
    const res = await fetch(`http://${proxy.host}/v2/a/manifests/b`, { method: 'PUT', body: 'hello' });
    assert.deepEqual(await res.json(), { method: 'PUT', url: '/v2/a/manifests/b', host: proxy.host, body: 'hello' });
    assert.deepEqual(proxy.counts, { requests: 1, errors5xx: 0, resets: 0, outageResets: 0 });
  } finally {
    await proxy.close();
    up.close();
  }
});

test('injects 5xx answers and connection resets at the given rate, the same ones for the same seed', async () => {
  const up = await upstream();
  const outcomes: (number | string)[][] = [];
  for (let i = 0; i < 2; i++) {
    const proxy = await startFaultProxy({ target: up.host, faultRate: 0.3, seed: 7, cooldown: 1 });
    const seen: (number | string)[] = [];
    for (let n = 0; n < 60; n++) seen.push(await call(proxy.host));
    outcomes.push(seen);
    assert.ok(proxy.counts.errors5xx > 0 && proxy.counts.resets > 0, JSON.stringify(proxy.counts));
    assert.equal(seen.filter((s) => typeof s === 'number' && s >= 500).length, proxy.counts.errors5xx);
    assert.equal(seen.filter((s) => s === 200).length, 60 - proxy.counts.errors5xx - proxy.counts.resets);
    await proxy.close();
  }
  assert.deepEqual(outcomes[0], outcomes[1]);
  up.close();
});

test('an outage starts at the first request the predicate picks and resets every connection until it ends', async () => {
  const up = await upstream();
  const proxy = await startFaultProxy({
    target: up.host,
    outageAt: (req) => req.method === 'POST',
    outageMs: 300,
  });
  try {
    assert.equal(await call(proxy.host), 200);
    assert.notEqual(await call(proxy.host, { method: 'POST' }), 200);
    assert.notEqual(await call(proxy.host), 200);
    await proxy.outageOver;
    assert.equal(await call(proxy.host, { method: 'POST' }), 200, 'one outage only');
    assert.ok(proxy.counts.outageResets >= 2);
    assert.ok(proxy.outage.endedAt! - proxy.outage.startedAt! >= 300);
  } finally {
    await proxy.close();
    up.close();
  }
});
