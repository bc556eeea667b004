/**
 * Webhook delivery of stream notifications: one POST per event and webhook, JSON body, signed with
 * `X-Kinoite-ZFS-Signature: sha256=<hex HMAC of the body>` when the webhook names a secret (read
 * from the worker's environment, never from workflow arguments). Connection failures and 5xx are
 * retried by Temporal; a 4xx answer is final (the receiver refused it) and is reported to the stream.
 */
import { createHmac } from 'node:crypto';
import { PermanentError, FailureType } from '../core/errors.ts';
import { redactUrl, type NotifyPayload } from '../core/notify.ts';
import { checkValue } from '../core/validate.ts';
import { fetchWithTimeouts, HttpTimeoutError } from './http.ts';
import type { ActivityDeps } from './deps.ts';

/** The signature header value of a body under a secret. */
export function signatureHeader(body: string, secret: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Activities of stream notifications. */
export function notifyActivities({ host }: ActivityDeps) {
  return {
    /**
     * Delivers one event to the stream's webhook number `index` of this worker's config (the URL and
     * secret never travel through Temporal); throws a retryable error for connection trouble and
     * 5xx, PermanentError for 4xx.
     */
    async deliverNotification(input: {
      stream: string;
      index: number;
      payload: NotifyPayload;
    }): Promise<{ url: string; status: number }> {
      const webhook = host.config.streams[input.stream]?.notify[input.index];
      if (!webhook)
        throw new PermanentError(
          FailureType.InvalidInput,
          `Stream ${input.stream} has no webhook number ${input.index + 1} in this worker's config: give workers and the CLI the same config.`,
        );
      checkValue('webhookUrl', webhook.url, `notify.${input.index}.url`);
      const body = JSON.stringify(input.payload);
      const headers: Record<string, string> = {
        'Content-Type': 'application/json',
        'User-Agent': 'kinoite-zfs',
        'X-Kinoite-ZFS-Event': input.payload.event,
      };
      if (webhook.secretEnv) {
        const secret = process.env[webhook.secretEnv];
        if (!secret)
          throw new PermanentError(
            FailureType.InvalidInput,
            `Webhook ${redactUrl(webhook.url)} is signed with $${webhook.secretEnv}, which is not set on this worker host.`,
          );
        headers['X-Kinoite-ZFS-Signature'] = signatureHeader(body, secret);
      }
      let res: Response;
      try {
        res = await fetchWithTimeouts(
          webhook.url,
          { method: 'POST', headers, body },
          { what: `deliver the ${input.payload.event} notification`, answerMs: 30_000 },
        );
      } catch (err) {
        // The timeout's message names the host only: a webhook's path can hold a token.
        if (err instanceof HttpTimeoutError) throw err;
        throw new Error(
          `Cannot reach webhook ${redactUrl(webhook.url)}: ${String((err as Error).cause ?? (err as Error).message)} (will be retried)`,
        );
      }
      await res.body?.cancel();
      if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
        throw new PermanentError(
          FailureType.InvalidInput,
          `Webhook ${redactUrl(webhook.url)} refused the ${input.payload.event} notification with HTTP ${res.status}; check its URL and secret.`,
        );
      }
      if (!res.ok) throw new Error(`Webhook ${redactUrl(webhook.url)} answered HTTP ${res.status} (will be retried)`);
      return { url: redactUrl(webhook.url), status: res.status };
    },
  };
}
