/**
 * The namespace set-up and its check (services/namespace.ts) against an in-memory stand-in for
 * Temporal's workflow and operator services, and how the CLI reports Temporal's errors: one line
 * and an exit code, never a stack trace. The real services are in temporal-cluster.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  checkNamespace,
  setupNamespace,
  NamespaceNotReadyError,
  SEARCH_ATTRIBUTES,
  type TemporalServices,
} from '../../services/namespace.ts';
import { reportError, temporalError } from '../../client/cli.ts';
import { ExitCode } from '../../client/exit-codes.ts';

function grpcError(code: number, details: string) {
  return Object.assign(new Error(`${code} STATUS: ${details}`), { code, details });
}

/** A Temporal with namespaces and their search attributes in memory; `calls` lists what changed. */
function fakeTemporal(
  opts: { namespaces?: Record<string, { retention: number; attrs: Record<string, number> }>; deny?: boolean } = {},
) {
  const namespaces = opts.namespaces ?? {};
  const calls: string[] = [];
  const ns = (name: string) => {
    if (opts.deny) throw grpcError(7, 'permission denied');
    const n = namespaces[name];
    if (!n) throw grpcError(5, `Namespace ${name} is not found.`);
    return n;
  };
  const services = {
    workflowService: {
      describeNamespace: async ({ namespace }: { namespace: string }) => ({
        config: { workflowExecutionRetentionTtl: { seconds: ns(namespace).retention } },
      }),
      registerNamespace: async (r: { namespace: string; workflowExecutionRetentionPeriod: { seconds: number } }) => {
        calls.push(`register ${r.namespace}`);
        namespaces[r.namespace] = { retention: r.workflowExecutionRetentionPeriod.seconds, attrs: {} };
        return {};
      },
      updateNamespace: async (r: {
        namespace: string;
        config: { workflowExecutionRetentionTtl: { seconds: number } };
      }) => {
        calls.push(`update ${r.namespace}`);
        ns(r.namespace).retention = r.config.workflowExecutionRetentionTtl.seconds;
        return {};
      },
    },
    operatorService: {
      listSearchAttributes: async ({ namespace }: { namespace: string }) => ({
        customAttributes: { ...ns(namespace).attrs },
      }),
      addSearchAttributes: async (r: { namespace: string; searchAttributes: Record<string, number> }) => {
        calls.push(`add ${Object.keys(r.searchAttributes).join(',')}`);
        Object.assign(ns(r.namespace).attrs, r.searchAttributes);
        return {};
      },
    },
  };
  return { services: services as unknown as TemporalServices, namespaces, calls };
}

const DAY = 86_400;
const all = () => Object.fromEntries(SEARCH_ATTRIBUTES.map((a) => [a.name, a.type as number]));

test('checkNamespace names the setup command for a missing namespace or missing attributes', async () => {
  const t = fakeTemporal({ namespaces: { half: { retention: DAY, attrs: { KzStream: 2 } } } });
  await assert.rejects(checkNamespace(t.services, 'kz', 'h:1'), (e: Error) => {
    assert.ok(e instanceof NamespaceNotReadyError);
    assert.match(e.message, /namespace kz does not exist on h:1: run "kinoite-zfs temporal setup --namespace kz"/);
    return true;
  });
  await assert.rejects(
    checkNamespace(t.services, 'half', 'h:1'),
    /lacks the search attributes KzStage, .*KzRepository: run "kinoite-zfs temporal setup --namespace half"/,
  );
  await assert.rejects(
    checkNamespace(fakeTemporal({ namespaces: { default: { retention: DAY, attrs: {} } } }).services, 'default', 'h:1'),
    /run "kinoite-zfs temporal setup" once/,
  );
});

test('checkNamespace passes a complete namespace, and one it may not inspect (Temporal Cloud keys)', async () => {
  await checkNamespace(fakeTemporal({ namespaces: { kz: { retention: DAY, attrs: all() } } }).services, 'kz', 'h:1');
  await checkNamespace(fakeTemporal({ deny: true }).services, 'kz', 'h:1');
});

test('setupNamespace creates the namespace and every attribute once; again it changes nothing', async () => {
  const t = fakeTemporal();
  const first = await setupNamespace(t.services, { namespace: 'kz', retentionSeconds: 30 * DAY });
  assert.equal(first.createdNamespace, true);
  assert.deepEqual(
    first.addedAttributes,
    SEARCH_ATTRIBUTES.map((a) => a.name),
  );
  assert.deepEqual(t.namespaces.kz, { retention: 30 * DAY, attrs: all() });
  const calls = t.calls.length;
  const again = await setupNamespace(t.services, { namespace: 'kz', retentionSeconds: 30 * DAY });
  assert.equal(again.createdNamespace, false);
  assert.deepEqual(again.addedAttributes, []);
  assert.equal(t.calls.length, calls, `no change the second time: ${t.calls.slice(calls).join('; ')}`);
});

test('setupNamespace sets the retention of an existing namespace and adds only what is missing', async () => {
  const t = fakeTemporal({ namespaces: { default: { retention: DAY, attrs: { KzStream: 2, Other: 2 } } } });
  const r = await setupNamespace(t.services, { namespace: 'default', retentionSeconds: 7 * DAY });
  assert.equal(r.previousRetentionSeconds, DAY);
  assert.equal(t.namespaces.default!.retention, 7 * DAY);
  assert.ok(!r.addedAttributes.includes('KzStream'));
  assert.equal(r.addedAttributes.length, SEARCH_ATTRIBUTES.length - 1);
  assert.equal(t.namespaces.default!.attrs.Other, 2, 'other attributes are left alone');
});

test('setupNamespace refuses an attribute of another type, changing no attribute', async () => {
  const t = fakeTemporal({ namespaces: { kz: { retention: DAY, attrs: { KzKernels: 2 } } } });
  await assert.rejects(
    setupNamespace(t.services, { namespace: 'kz', retentionSeconds: DAY }),
    /KzKernels .*KzKernels KeywordList/,
  );
  assert.ok(!t.calls.some((c) => c.startsWith('add')), 'nothing added');
});

test('Temporal errors become one line with an exit code', () => {
  const bad = temporalError(grpcError(3, 'Namespace kz has no mapping defined for search attribute KzStream'));
  assert.equal(bad?.exitCode, ExitCode.ConfigError);
  assert.match(
    bad!.line,
    /^Temporal answered INVALID_ARGUMENT: Namespace kz has no mapping .* \(run "kinoite-zfs temporal setup" for this namespace\)$/,
  );

  const wrapped = Object.assign(new Error('Update-with-Start could not be executed'), {
    name: 'ServiceError',
    cause: grpcError(14, 'connection reset\n    at somewhere (file.js:1:1)'),
  });
  const down = temporalError(wrapped);
  assert.equal(down?.exitCode, ExitCode.ConnectionError);
  assert.equal(down?.line, 'Temporal answered UNAVAILABLE: Update-with-Start could not be executed: connection reset');

  assert.equal(temporalError(grpcError(16, 'bad key'))?.exitCode, ExitCode.ConnectionError);
  assert.equal(temporalError(grpcError(13, 'boom'))?.exitCode, ExitCode.InternalError);
  assert.equal(temporalError(new TypeError('x is undefined')), undefined, 'a bug is not a Temporal error');
});

test('reportError prints a Temporal error and a namespace not set up as one line, no stack', () => {
  const lines: string[] = [];
  const original = console.error;
  console.error = (...args: unknown[]) => lines.push(args.join(' '));
  try {
    const wrapped = Object.assign(new Error('Update-with-Start could not be executed'), {
      name: 'ServiceError',
      cause: grpcError(3, 'BadSearchAttributes: search attribute KzStream is not defined'),
    });
    assert.equal(reportError(wrapped), ExitCode.ConfigError);
    assert.equal(
      reportError(
        new NamespaceNotReadyError('namespace kz lacks … run "kinoite-zfs temporal setup --namespace kz" once'),
      ),
      ExitCode.ConfigError,
    );
  } finally {
    console.error = original;
  }
  for (const line of lines) {
    assert.equal(line.split('\n').length, 1, `one line: ${line}`);
    assert.match(line, /^kinoite-zfs: .*kinoite-zfs temporal setup/);
  }
});
