/**
 * Metrics, scraped by a real Prometheus (Debian's package) on loopback: a worker started with
 * worker.metrics runs a promotion through `run --wait`; Prometheus then holds the pipeline's series
 * (runs by outcome, stable age, stage durations, …) and the SDK's own; every query of the Grafana
 * dashboard in deploy/ names a series the worker exported, and the alert rules pass promtool's
 * check and their own rule tests.
 *
 * Lane: side
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn, type ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import { parse, stringify } from 'yaml';
import { z } from 'zod';
import {
  bringUpWorld,
  worldSpec,
  spawnWorker,
  killWorker,
  tearDownWorld,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { freePort } from '../../services/daemon.ts';
import { PIPELINE_METRICS } from '../../core/metrics.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const DEPLOY = join(repoRoot, 'deploy');

let world: TestWorld;
let worker: ChildProcess | undefined;
let prometheus: ChildProcess | undefined;
let metricsAddress: string;
let promUrl: string;
let configFile: string;

async function prom<T>(path: string): Promise<T> {
  const r = await fetch(`${promUrl}${path}`);
  const body = (await r.json()) as { status: string; data: T; error?: string };
  assert.equal(body.status, 'success', `${path}: ${body.error}`);
  return body.data;
}

/** Polls a PromQL query until it returns at least one sample; returns them. */
async function samples(query: string, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const data = await prom<{ result: { metric: Record<string, string>; value: [number, string] }[] }>(
      `/api/v1/query?query=${encodeURIComponent(query)}`,
    ).catch(() => ({ result: [] }));
    if (data.result.length) return data.result;
    if (Date.now() > deadline) throw new Error(`Prometheus has no samples for ${query} after ${timeoutMs / 1000}s`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

before(async () => {
  world = await bringUpWorld('metrics', worldSpec({ versions: [[K1]] }), { fresh: true });
  metricsAddress = `127.0.0.1:${await freePort()}`;
  // The workers' config with a metrics endpoint, as an operator deploys it.
  const config = parse(await readFile(world.configFile, 'utf8')) as Record<string, Record<string, unknown>>;
  config.worker = { ...config.worker, metrics: metricsAddress };
  configFile = join(world.dir, 'metrics-worker.yaml');
  await writeFile(configFile, stringify(config));
  worker = await spawnWorker(configFile, join(world.dir, 'worker', 'metrics-worker.log'));

  const promDir = join(world.dir, 'prometheus');
  await rm(promDir, { recursive: true, force: true });
  await mkdir(promDir, { recursive: true });
  const promPort = await freePort();
  promUrl = `http://127.0.0.1:${promPort}`;
  await writeFile(
    join(promDir, 'prometheus.yml'),
    stringify({
      global: { scrape_interval: '1s', evaluation_interval: '1s' },
      rule_files: [join(DEPLOY, 'prometheus', 'alerts.yml')],
      scrape_configs: [{ job_name: 'kinoite-zfs', static_configs: [{ targets: [metricsAddress] }] }],
    }),
  );
  prometheus = spawn(
    'prometheus',
    [
      `--config.file=${join(promDir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(promDir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    { stdio: 'ignore', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } },
  );
  const deadline = Date.now() + 60_000;
  while (
    !(await fetch(`${promUrl}/-/ready`).then(
      (r) => r.ok,
      () => false,
    ))
  ) {
    if (Date.now() > deadline || prometheus.exitCode !== null) throw new Error('Prometheus did not become ready');
    await new Promise((r) => setTimeout(r, 250));
  }
});

after(async () => {
  prometheus?.kill('SIGTERM');
  if (worker) killWorker(worker);
  await tearDownWorld(world);
});

test('after a promotion Prometheus holds the pipeline series, with the values of the run', async () => {
  const run = await execa(
    process.execPath,
    [join(repoRoot, 'bin', 'kinoite-zfs.js'), 'run', '--config', configFile, '--wait', '--json'],
    {
      reject: false,
    },
  );
  assert.equal(run.exitCode, 0, `${run.stdout}\n${run.stderr}`);
  const stream = world.stream;
  const M = PIPELINE_METRICS;
  const promoted = await samples(`${M.runs}{stream="${stream}",outcome="promoted"} == 1`);
  assert.equal(promoted.length, 1);
  const [up] = await samples(`${M.up}{stream="${stream}"}`);
  assert.equal(up!.value[1], '1');
  const [age] = await samples(`${M.stableAge}{stream="${stream}"}`);
  assert.ok(Number(age!.value[1]) >= 0 && Number(age!.value[1]) < 3600, `stable age ${age!.value[1]} s`);
  const stages = await samples(`${M.stageDuration}{stream="${stream}"}`);
  const names = stages.map((s) => s.metric.stage).sort();
  for (const stage of ['resolve', 'compose', 'promote'])
    assert.ok(names.includes(stage), `stage ${stage} in ${names.join(', ')}`);
  const [lag] = await samples(`${M.kernelLag}{stream="${stream}"}`);
  assert.equal(lag!.metric.kernel, K1);
  const [waiting] = await samples(`${M.kernelWaiting}{stream="${stream}"}`);
  assert.equal(waiting!.value[1], '0', 'the kernel is stable now');
  for (const m of [M.blocked, M.approvals, M.failedInARow, M.notificationsFailed]) {
    const [s] = await samples(`${m}{stream="${stream}"}`);
    assert.equal(s!.value[1], '0', m);
  }
  // The SDK's own metrics come through the same endpoint.
  await samples('temporal_workflow_completed');
  await samples('temporal_activity_execution_latency_bucket');
});

test('every query of the Grafana dashboard names only series the worker exports', async () => {
  const Dashboard = z.object({
    title: z.string().min(1),
    uid: z.string().min(1),
    schemaVersion: z.number().int().min(30),
    templating: z.object({ list: z.array(z.object({ name: z.string(), type: z.string() })) }),
    panels: z
      .array(
        z.object({
          id: z.number().int(),
          type: z.enum(['timeseries', 'stat', 'table', 'bargauge', 'gauge', 'row']),
          title: z.string().min(1),
          gridPos: z.object({ x: z.number(), y: z.number(), w: z.number(), h: z.number() }),
          datasource: z.object({ type: z.literal('prometheus'), uid: z.string() }).optional(),
          targets: z.array(z.object({ expr: z.string().min(1), refId: z.string() })).optional(),
        }),
      )
      .min(1),
  });
  const dashboard = Dashboard.parse(JSON.parse(await readFile(join(DEPLOY, 'grafana', 'kinoite-zfs.json'), 'utf8')));
  assert.equal(new Set(dashboard.panels.map((p) => p.id)).size, dashboard.panels.length, 'panel ids are unique');
  const exported = new Set(await prom<string[]>('/api/v1/label/__name__/values'));
  const exprs = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
  assert.ok(exprs.length >= 8, `${exprs.length} queries`);
  for (const { panel, expr } of exprs) {
    const names = [...expr.matchAll(/\b(kinoite_zfs_[a-z_]+|temporal_[a-z_]+)\b/g)].map((m) => m[1]!);
    assert.ok(names.length > 0, `${panel}: ${expr} names no series`);
    for (const n of names) assert.ok(exported.has(n), `${panel}: ${n} is not exported`);
  }
});

test('the alert rules load in promtool and pass their rule tests', async () => {
  const dir = join(DEPLOY, 'prometheus');
  const check = await execa('promtool', ['check', 'rules', 'alerts.yml'], { cwd: dir, reject: false });
  assert.equal(check.exitCode, 0, check.stdout + check.stderr);
  const unit = await execa('promtool', ['test', 'rules', 'alerts.test.yml'], { cwd: dir, reject: false });
  assert.equal(unit.exitCode, 0, unit.stdout + unit.stderr);
  // Each alert's expression names series the pipeline exports.
  const rules = parse(await readFile(join(dir, 'alerts.yml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string }[] }[];
  };
  const known = new Set<string>(Object.values(PIPELINE_METRICS));
  for (const r of rules.groups.flatMap((g) => g.rules))
    for (const [n] of r.expr.matchAll(/\bkinoite_zfs_[a-z_]+\b/g)) assert.ok(known.has(n), `${r.alert}: ${n}`);
});
