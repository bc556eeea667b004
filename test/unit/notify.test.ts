/**
 * Notification rules (core/notify.ts) and the webhook signature and URL redaction (activities/notify.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { NOTIFY_EVENTS, runEndAnnouncements, runEvent, webhooksFor } from '../../core/notify.ts';
import { holdText, type CompatHold } from '../../core/compat-hold.ts';
import { signatureHeader } from '../../activities/notify.ts';
import { redactUrl } from '../../core/notify.ts';

test('runs announce promoted, failed and approval-expired; other outcomes nothing', () => {
  assert.equal(runEvent('promoted'), 'promoted');
  assert.equal(runEvent('failed'), 'failed');
  assert.equal(runEvent('expired'), 'approval-expired');
  for (const o of ['unchanged', 'blocked', 'vetoed', 'rejected', 'superseded', 'candidate-only'])
    assert.equal(runEvent(o), undefined, o);
});

test('only the webhooks that list an event get it', () => {
  const hooks = [
    { url: 'https://a', events: [...NOTIFY_EVENTS] },
    { url: 'https://b', events: ['blocked' as const] },
  ];
  assert.deepEqual(
    webhooksFor(hooks, 'blocked').map((h) => h.url),
    ['https://a', 'https://b'],
  );
  assert.deepEqual(
    webhooksFor(hooks, 'promoted').map((h) => h.url),
    ['https://a'],
  );
  assert.deepEqual(webhooksFor(undefined, 'promoted'), []);
});

test('the signature is the HMAC-SHA256 of the exact body', () => {
  const body = '{"event":"promoted"}';
  assert.equal(signatureHeader(body, 's3cret'), `sha256=${createHmac('sha256', 's3cret').update(body).digest('hex')}`);
  assert.notEqual(signatureHeader(`${body} `, 's3cret'), signatureHeader(body, 's3cret'));
});

test('webhook URLs in messages keep scheme, host and port only', () => {
  assert.equal(redactUrl('https://hooks.slack.com/services/T000/B000/XXXXSECRET'), 'https://hooks.slack.com/…');
  assert.equal(redactUrl('http://127.0.0.1:8080/hook?token=abc'), 'http://127.0.0.1:8080/…');
  assert.equal(redactUrl('not a url'), '(webhook)');
});

test("a run's end announces its own event, then the compatibility hold's transition, with the same facts", () => {
  const D = `sha256:${'d'.repeat(64)}`;
  const promoted = {
    runWorkflowId: 'stream/s/run-3',
    outcome: 'promoted',
    message: 'Promoted.',
    kernels: ['6.18.5-200.fc43.x86_64'],
    release: { digest: D, zfsVersion: '2.4.4' },
  };
  const facts = { run: 'stream/s/run-3', digest: D, kernels: ['6.18.5-200.fc43.x86_64'], zfsVersion: '2.4.4' };
  assert.deepEqual(runEndAnnouncements(promoted, undefined, undefined), [
    { event: 'promoted', facts: { message: 'Promoted.', ...facts } },
  ]);
  assert.deepEqual(runEndAnnouncements(promoted, 'unblocked', undefined), [
    { event: 'promoted', facts: { message: 'Promoted.', ...facts } },
    { event: 'unblocked', facts: { message: 'The compatibility hold ended: Promoted.', ...facts } },
  ]);
  const hold: CompatHold = {
    since: 'T',
    kernel: '7.3.1-100.fc44.x86_64',
    max: '7.2',
    zfsVersion: '2.4.4',
    kernels: ['7.3.1-100.fc44.x86_64'],
  };
  const blocked = {
    runWorkflowId: 'stream/s/run-4',
    outcome: 'blocked',
    message: 'Blocked.',
    kernels: hold.kernels,
    blocked: { zfsVersion: '2.4.4' },
  };
  assert.deepEqual(runEndAnnouncements(blocked, 'blocked', hold), [
    {
      event: 'blocked',
      facts: {
        message: holdText(hold),
        run: 'stream/s/run-4',
        digest: undefined,
        kernels: hold.kernels,
        zfsVersion: '2.4.4',
      },
    },
  ]);
  assert.deepEqual(runEndAnnouncements({ ...blocked, outcome: 'unchanged' }, undefined, hold), []);
});
