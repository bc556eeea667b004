/**
 * Every HTTP request the activities make (registry, token service, release source, webhooks) goes
 * through `fetchWithTimeouts`: the server must answer within `answerMs` and, while it sends the
 * body, never pause longer than `idleMs`; otherwise the request fails with a retryable
 * {@link HttpTimeoutError} that says which host, for what, and how long it waited. A large blob
 * may take as long as it needs as long as it keeps coming. Every body chunk is the running
 * activity's progress (bytes, for its heartbeats).
 */
import { progressNoter } from './progress.ts';

/** Timeouts of one request. */
export interface HttpTimeouts {
  /** Until the response headers arrive. @default 60 s */
  answerMs?: number;
  /** Longest pause between two chunks of the response body. @default 60 s */
  idleMs?: number;
}

/** The default of both timeouts. */
export const HTTP_TIMEOUT_MS = 60_000;

/** A request that got no answer, or whose body stopped coming, in time; Temporal retries it. */
export class HttpTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'HttpTimeoutError';
  }
}

/**
 * `fetch` with an answer timeout and a body idle timeout (see the module doc). `what` says what
 * the request was for (`read blob sha256:… of host/repo`), for the error; `signal` (cancellation)
 * still aborts it with its own reason.
 */
export async function fetchWithTimeouts(
  url: string | URL,
  init: RequestInit & { duplex?: 'half' },
  opts: HttpTimeouts & { what: string },
): Promise<Response> {
  const answerMs = opts.answerMs ?? HTTP_TIMEOUT_MS;
  const idleMs = opts.idleMs ?? HTTP_TIMEOUT_MS;
  const { host } = new URL(url);
  const timeout = new AbortController();
  const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
  const expire = (message: string) => () => timeout.abort(new HttpTimeoutError(message));
  const answerTimer = setTimeout(
    expire(`${host} did not answer within ${seconds(answerMs)} while trying to ${opts.what} (retrying)`),
    answerMs,
  );
  let res: Response;
  try {
    res = await fetch(url, { ...init, signal });
  } catch (err) {
    if (timeout.signal.aborted && !init.signal?.aborted) throw timeout.signal.reason;
    throw err;
  } finally {
    clearTimeout(answerTimer);
  }
  if (!res.body) return res;
  const note = progressNoter();
  let idleTimer: NodeJS.Timeout | undefined;
  const idle = expire(`${host} stopped sending for ${seconds(idleMs)} while trying to ${opts.what} (retrying)`);
  const arm = () => {
    clearTimeout(idleTimer);
    // unref: a body nobody reads must not keep the worker process alive.
    idleTimer = setTimeout(idle, idleMs).unref();
  };
  arm();
  const body = res.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        arm();
        note({ bytes: chunk.byteLength });
        controller.enqueue(chunk);
      },
      flush() {
        clearTimeout(idleTimer);
      },
    }),
  );
  return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${(ms / 1000).toFixed(1)}s`;
}
