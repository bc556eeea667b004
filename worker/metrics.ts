/**
 * The worker's Prometheus endpoint (`worker.metrics`): one `/metrics` with the Temporal SDK's own
 * metrics (the Runtime's Prometheus exporter, bound to a private loopback port and read through at
 * each scrape) and, on a control worker, the pipeline's, rendered from the state of every stream
 * in the workers' config (core/metrics.ts). Reading the streams at the scrape, rather than counting
 * in this process, keeps the numbers right across worker restarts and with several workers.
 */
import { createServer, type Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { renderPipelineMetrics, type ScrapedStream } from '../core/metrics.ts';
import { streamState } from '../client/stream-client.ts';

/** How long one scrape waits for the SDK exporter or for a stream's query. */
const SCRAPE_PART_TIMEOUT_MS = 5000;

/** What the endpoint reads at each scrape. */
export interface MetricsSources {
  /** host:port of the SDK's Prometheus exporter. */
  sdkAddress: string;
  /** The pipeline's part: the streams to read and a client to query them (control workers only). */
  pipeline?: { streams: () => Promise<string[]>; client: () => Promise<Client> };
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  return Promise.race([
    p,
    new Promise<never>((_, reject) =>
      setTimeout(
        () => reject(new Error(`${what} did not answer within ${SCRAPE_PART_TIMEOUT_MS / 1000}s`)),
        SCRAPE_PART_TIMEOUT_MS,
      ).unref(),
    ),
  ]);
}

/** The whole exposition text of one scrape. */
export async function scrape(sources: MetricsSources, now = new Date()): Promise<string> {
  const sdk = withTimeout(
    fetch(`http://${sources.sdkAddress}/metrics`).then((r) => r.text()),
    'the SDK metrics exporter',
  ).catch((err: Error) => `# SDK metrics unavailable: ${err.message.replace(/\n/g, ' ')}\n`);
  let pipeline = '';
  if (sources.pipeline) {
    const { streams, client } = sources.pipeline;
    // Temporal unreachable: every stream is reported down, and the SDK's metrics still go out.
    const c = await client().catch((err: Error) => err);
    const scraped: ScrapedStream[] = await Promise.all(
      (await streams()).map(async (stream) => {
        if (c instanceof Error) return { stream, error: c.message };
        try {
          const state = await withTimeout(streamState(c, stream), `stream ${stream}`);
          return { stream, state };
        } catch (err) {
          return { stream, error: (err as Error).message };
        }
      }),
    );
    pipeline = renderPipelineMetrics(scraped, now);
  }
  return `${await sdk}${pipeline}`;
}

/** The metrics endpoint could not listen where worker.metrics says. */
export class MetricsListenError extends Error {
  override name = 'MetricsListenError';
}

/** Serves `/metrics` on `listen` (host:port) until closed. */
export async function serveMetrics(listen: string, sources: MetricsSources): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('kinoite-zfs serves metrics at /metrics\n');
      return;
    }
    scrape(sources).then(
      (text) => res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`scrape failed: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new MetricsListenError(
          `worker.metrics: cannot listen on ${listen} (${err.code ?? err.message})${err.code === 'EADDRINUSE' ? ': another process has that port; choose another in worker.metrics' : ''}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  return server;
}
