/**
 * The fault suite on real parts: the worker SIGKILLed at every activity boundary of a full run (the
 * boundaries come from a reference run's own history), a loopback proxy in front of the registry
 * injecting 5xx answers, connection resets and a 10-minute outage (one run in compose, one in
 * promotion, in one window), and the Temporal dev server restarted mid-run. Every run must end
 * promoted with exactly one release, stable at the tested digest, signed; a watcher reads the
 * stable tags of every world from the registries throughout and finds no unsigned digest behind
 * any of them. The suite writes its table into docs/failures.md (between the fault-suite markers).
 *
 * Its own Temporal dev server (restarting the project's would break the other lanes' tests) and
 * its own worlds: the kill series runs in KILL_WORLDS worlds at once, beside the outage worlds.
 *
 * Lane: faults
 *
 *   KZ_FAULTS_BOUNDARIES=0,5,17   only those boundaries (by index), for working on the suite
 *   KZ_FAULTS_OUTAGE=90s          a shorter outage, likewise
 * With either set the table in docs/failures.md is left alone.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { execa } from 'execa';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode } from '@temporalio/worker';
import {
  bringUpWorld,
  worldSpec,
  client,
  spawnWorker,
  killWorker,
  digestOf,
  tagsOf,
  inspect,
  cosignVerifies,
  maxAttempt,
  tearDownWorld,
  repoRoot,
  type TestWorld,
} from '../support/harness.ts';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.ts';
import { ensureTemporal, stopTemporal } from '../../world/services.ts';
import { streamState, triggerStream } from '../../client/stream-client.ts';
import { loadConfig } from '../../client/config-file.ts';
import { durationMs } from '../../core/stream-rules.ts';
import { progressQuery } from '../../workflows/shared.ts';
import type { PipelineResult, RunProgress } from '../../core/pipeline.ts';

const K1 = '6.17.7-300.fc43.x86_64';
const KILL_WORLDS = 4;
const ONLY = process.env.KZ_FAULTS_BOUNDARIES?.split(',').map(Number);
const OUTAGE_MS = durationMs(process.env.KZ_FAULTS_OUTAGE ?? '10m');
/** The table is the suite's record only when it ran in full. */
const FULL = !ONLY && !process.env.KZ_FAULTS_OUTAGE;
const STATE = join(repoRoot, '.state', 'test-worlds', 'faults');
const TEMPORAL_STATE = join(STATE, 'temporal');
const DOC = join(repoRoot, 'docs', 'failures.md');
const BEGIN = '<!-- fault-suite:begin (written by test/integration/faults.test.ts; do not edit by hand) -->';
const END = '<!-- fault-suite:end -->';

type Event = 'scheduled' | 'started' | 'completed';
/** One activity boundary of the reference run: right after this history event of this activity. */
interface Boundary {
  activityId: string;
  activityType: string;
  event: Event;
}

/** What one run under faults ended with, as the final-state checks found it. */
interface RunCheck {
  outcome: string;
  /** Releases the stream recorded for this run. */
  releases: number;
  /** New audit tags in the stable repository (one per promotion). */
  auditTags: number;
  /** stable:latest is the digest the run tested. */
  stableIsTested: boolean;
  /** cosign verify of stable@digest, and how many signatures it has. */
  verifies: boolean;
  signatures: number;
}
const correct = (r: RunCheck) =>
  r.outcome === 'promoted' &&
  r.releases === 1 &&
  r.auditTags === 1 &&
  r.stableIsTested &&
  r.verifies &&
  r.signatures === 1;

interface KillRow {
  index: number;
  boundary: Boundary;
  killed: boolean;
  /** Evidence in the run's history that the kill landed there: the attempts of the activity, or the workflow task that timed out. */
  evidence: string;
  landed: boolean;
  check: RunCheck;
}

/** A world with its own worker (a child process, so it can be killed) and a client. */
interface Lane {
  world: TestWorld;
  log: string;
  worker?: ChildProcess;
}

let bundle: string;
let c: Client;
const lanes: Lane[] = [];
const outageWorlds: { compose?: Lane; promote?: Lane } = {};
const proxies: FaultProxy[] = [];
const rows: KillRow[] = [];
const others: { run: string; faults: string; retries: string; check: RunCheck }[] = [];
let boundaries: Boundary[] = [];
let watcher: StableWatcher;

// ---------------------------------------------------------------------------------------------
// Workers: the fault worker (test/support/fault-worker.ts) with the suite's workflow bundle

async function startLaneWorker(lane: Lane, kill?: Boundary): Promise<ChildProcess> {
  await stopLaneWorker(lane);
  const child = await spawnWorker(lane.world.configFile, lane.log, {
    command: ['--import', 'tsx', join(repoRoot, 'test', 'support', 'fault-worker.ts'), lane.world.configFile, bundle],
    env: { KZ_FAULT_KILL: kill ? `${kill.activityId}:${kill.event}` : '' },
  });
  lane.worker = child;
  return child;
}

/** Stops a lane's worker (gracefully: an idle worker), waiting until it is gone. */
async function stopLaneWorker(lane: Lane): Promise<void> {
  const child = lane.worker;
  lane.worker = undefined;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((r) => child.once('exit', r));
  try {
    process.kill(-child.pid!, 'SIGTERM');
  } catch {
    return;
  }
  const t = setTimeout(() => killWorker(child), 20_000);
  await gone;
  clearTimeout(t);
}

// ---------------------------------------------------------------------------------------------
// Runs and their final state, read from the registry and the stream

/** A new commit in the world's recipe repository: the next run has new inputs, so it really promotes. */
async function newRecipeCommit(world: TestWorld, label: string): Promise<void> {
  await execa(
    'git',
    ['-C', world.info.recipe.git, '-c', 'commit.gpgsign=false', 'commit', '--quiet', '--allow-empty', '-m', label],
    {
      env: {
        GIT_AUTHOR_NAME: 'faults',
        GIT_AUTHOR_EMAIL: 'f@x.invalid',
        GIT_COMMITTER_NAME: 'faults',
        GIT_COMMITTER_EMAIL: 'f@x.invalid',
      },
    },
  );
}

const auditTags = async (w: TestWorld) => (await tagsOf(w.info.stream.stable)).filter((t) => t.startsWith('stable-'));

/** Triggers a run on the lane's stream (rebuilding akmods, so every stage does work); returns its handle. */
async function trigger(lane: Lane): Promise<WorkflowHandle> {
  const reply = await triggerStream(c, lane.world.config, lane.world.stream, {
    trigger: { source: 'test', requestId: randomUUID() },
    options: { rebuildAkmods: true },
  });
  assert.equal(reply.status, 'started', `the stream started a run (${reply.status})`);
  return c.workflow.getHandle(reply.runWorkflowId!);
}

/** The final-state checks of a finished run. */
async function checkRun(
  lane: Lane,
  handle: WorkflowHandle,
  auditBefore: string[],
  timeoutMs = 15 * 60_000,
): Promise<RunCheck> {
  const w = lane.world;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<{ outcome: string }>((resolve) => {
    timer = setTimeout(() => resolve({ outcome: `not finished after ${timeoutMs / 60_000} min` }), timeoutMs);
  });
  const r = (await Promise.race([
    handle.result().catch((err: Error) => ({ outcome: `failed: ${err.message}` })),
    timedOut,
  ])) as PipelineResult;
  clearTimeout(timer);
  // A run that hangs is ended, so the stream can start the next one.
  if (r.outcome.startsWith('not finished'))
    await handle.terminate('the fault suite gave up on it').catch(() => undefined);
  // The stream records the release when the run tells it; wait until it has let the run go.
  const deadline = Date.now() + 60_000;
  let releases = 0;
  while (Date.now() < deadline) {
    const s = await streamState(c, w.stream).catch(() => undefined);
    releases = s?.releases.filter((x) => x.runWorkflowId === handle.workflowId).length ?? 0;
    if (s && !s.current && (releases > 0 || r.outcome !== 'promoted')) break;
    await new Promise((res) => setTimeout(res, 250));
  }
  const digest = r.candidate?.digest;
  const stable = w.info.stream.stable;
  const sig = digest ? await inspect(`${stable}:${digest.replace(':', '-')}.sig`) : undefined;
  return {
    outcome: r.outcome,
    releases,
    auditTags: (await auditTags(w)).filter((t) => !auditBefore.includes(t)).length,
    stableIsTested: !!digest && (await digestOf(`${stable}:latest`)) === digest,
    verifies: !!digest && (await cosignVerifies(`${stable}@${digest}`, w.info.signing.publicKeyFile)),
    signatures: sig?.Layers.length ?? 0,
  };
}

async function historyOf(handle: WorkflowHandle) {
  return (await handle.fetchHistory()).events ?? [];
}

/**
 * The boundaries of a finished run, in history order: after each ActivityTaskScheduled,
 * ActivityTaskStarted and ActivityTaskCompleted event of the run's activities.
 */
async function boundariesOf(handle: WorkflowHandle): Promise<Boundary[]> {
  const events = await historyOf(handle);
  const byEventId = new Map<string, { activityId: string; activityType: string }>();
  const out: Boundary[] = [];
  for (const e of events) {
    const s = e.activityTaskScheduledEventAttributes;
    if (s) {
      const a = { activityId: s.activityId!, activityType: s.activityType!.name! };
      byEventId.set(String(e.eventId), a);
      out.push({ ...a, event: 'scheduled' });
    }
    const st = e.activityTaskStartedEventAttributes;
    if (st) out.push({ ...byEventId.get(String(st.scheduledEventId))!, event: 'started' });
    const done = e.activityTaskCompletedEventAttributes;
    if (done) out.push({ ...byEventId.get(String(done.scheduledEventId))!, event: 'completed' });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// The watcher: every stable tag of every world, read over HTTP from the registries themselves

const MANIFEST_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

class StableWatcher {
  samples = 0;
  observations = 0;
  unsigned: string[] = [];
  /** Every digest seen behind a stable tag, with whether cosign verified it. */
  digests = new Map<string, boolean | undefined>();
  #stop = false;
  #done?: Promise<void>;
  /** Audit tags never move: read once. */
  #audit = new Map<string, string>();

  constructor(private targets: () => TestWorld[]) {}

  start(): void {
    this.#done = (async () => {
      while (!this.#stop) {
        for (const w of this.targets()) await this.sample(w).catch(() => undefined);
        await this.verifyNew();
        await new Promise((r) => setTimeout(r, 1000));
      }
    })();
  }

  async stop(): Promise<void> {
    this.#stop = true;
    await this.#done;
    await this.verifyNew();
  }

  async sample(w: TestWorld): Promise<void> {
    const { host } = w.info.registry;
    const repo = w.info.stream.stable.slice(host.length + 1);
    const list = async () => {
      const res = await fetch(`http://${host}/v2/${repo}/tags/list`);
      return res.ok ? (((await res.json()) as { tags?: string[] }).tags ?? []) : [];
    };
    const seen: [string, string][] = [];
    // Digests first, signatures after: a tag that moved between the two reads was signed before it moved.
    for (const tag of (await list()).filter((t) => !t.startsWith('sha256-'))) {
      const key = `${host}/${repo}:${tag}`;
      let digest = this.#audit.get(key);
      if (!digest) {
        const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, {
          method: 'HEAD',
          headers: { accept: MANIFEST_TYPES },
        });
        digest = res.headers.get('docker-content-digest') ?? undefined;
        if (!res.ok || !digest) continue;
        if (tag.startsWith('stable-')) this.#audit.set(key, digest);
      }
      seen.push([tag, digest]);
    }
    const after = new Set(await list());
    this.samples++;
    for (const [tag, digest] of seen) {
      this.observations++;
      const ref = `${host}/${repo}@${digest}`;
      if (!after.has(`${digest.replace(':', '-')}.sig`)) this.unsigned.push(`${tag} → ${ref}`);
      if (!this.digests.has(ref)) this.digests.set(ref, undefined);
    }
  }

  /** cosign verify of every digest seen and not yet verified. */
  async verifyNew(): Promise<void> {
    for (const [ref, verified] of this.digests) {
      if (verified !== undefined) continue;
      const w = this.targets().find((x) => ref.startsWith(`${x.info.registry.host}/`))!;
      this.digests.set(ref, await cosignVerifies(ref, w.info.signing.publicKeyFile));
    }
  }
}

// ---------------------------------------------------------------------------------------------

/** Writes a proxied copy of the world's config: every image reference goes through the proxy. */
async function throughProxy(world: TestWorld, proxy: FaultProxy): Promise<TestWorld> {
  const file = join(world.dir, 'config-through-proxy.yaml');
  const text = (await readFile(world.configFile, 'utf8')).replaceAll(world.info.registry.host, proxy.host);
  await writeFile(file, text);
  return { ...world, configFile: file, config: await loadConfig(file) };
}

async function faultWorld(name: string): Promise<TestWorld> {
  return bringUpWorld(name, worldSpec({ versions: [[K1]] }), { fresh: true, temporalState: TEMPORAL_STATE });
}

before(async () => {
  await mkdir(STATE, { recursive: true });
  await ensureTemporal({ stateDir: TEMPORAL_STATE });
  // The workflow code with the fault suite's interceptor, bundled once for every worker start.
  const { code } = await bundleWorkflowCode({
    workflowsPath: join(repoRoot, 'workflows', 'index.ts'),
    workflowInterceptorModules: [join(repoRoot, 'test', 'support', 'fault-interceptors.ts')],
    logger: { log() {}, trace() {}, debug() {}, info() {}, warn() {}, error: (m: string) => console.error(m) } as never,
  });
  bundle = join(STATE, 'workflow-bundle.js');
  await writeFile(bundle, code);
  // The first world alone (it may build the shared images), the others beside each other.
  const first = await faultWorld('faults-k0');
  const rest = await Promise.all([
    ...Array.from({ length: KILL_WORLDS - 1 }, (_, i) => faultWorld(`faults-k${i + 1}`)),
    faultWorld('faults-compose'),
    faultWorld('faults-promote'),
  ]);
  for (const [i, world] of [first, ...rest.slice(0, KILL_WORLDS - 1)].entries())
    lanes.push({ world, log: join(STATE, 'logs', `k${i}.log`) });
  outageWorlds.compose = { world: rest.at(-2)!, log: join(STATE, 'logs', 'compose.log') };
  outageWorlds.promote = { world: rest.at(-1)!, log: join(STATE, 'logs', 'promote.log') };
  c = await client(first);
  watcher = new StableWatcher(() => [...lanes, outageWorlds.compose!, outageWorlds.promote!].map((l) => l.world));
  watcher.start();
});

after(async () => {
  await watcher?.stop();
  for (const lane of [...lanes, outageWorlds.compose, outageWorlds.promote]) if (lane) await stopLaneWorker(lane);
  for (const p of proxies) await p.close();
  await c?.connection.close();
  for (const lane of [...lanes, outageWorlds.compose, outageWorlds.promote]) await tearDownWorld(lane?.world);
  await stopTemporal({ stateDir: TEMPORAL_STATE });
});

test('a reference run: its history lists the activity boundaries of a full run', async () => {
  const lane = lanes[0]!;
  await startLaneWorker(lane);
  await newRecipeCommit(lane.world, 'reference run');
  const before = await auditTags(lane.world);
  const handle = await trigger(lane);
  const check = await checkRun(lane, handle, before);
  assert.ok(correct(check), JSON.stringify(check));
  boundaries = await boundariesOf(handle);
  const types = new Set(boundaries.map((b) => b.activityType));
  for (const t of ['loadStreamPlan', 'buildKernelAkmods', 'composeCandidate', 'smokeTestCandidate', 'signImage'])
    assert.ok(types.has(t), `the reference run ran ${t}`);
  others.push({ run: 'reference run (no fault)', faults: '–', retries: '–', check });
  await stopLaneWorker(lane);
});

describe('faults at once', { concurrency: true }, () => {
  test('the worker SIGKILLed at every activity boundary: every run ends promoted, once, signed', async () => {
    const todo = boundaries
      .map((boundary, index) => ({ boundary, index }))
      .filter((b) => !ONLY || ONLY.includes(b.index));
    assert.ok(todo.length > 0);
    let next = 0;
    await Promise.all(
      lanes.map(async (lane) => {
        for (let i = next++; i < todo.length; i = next++) {
          rows.push(await killAt(lane, todo[i]!.boundary, todo[i]!.index));
          // The table so far, marked as such: a suite stopped half-way still leaves its record.
          if (FULL) await writeTable(`in progress: ${rows.length} of ${todo.length} boundaries done`);
        }
      }),
    );
    rows.sort((a, b) => a.index - b.index);
    const wrong = rows.filter((r) => !r.killed || !r.landed || !correct(r.check));
    assert.deepEqual(wrong, [], 'every boundary was killed and its run ended correct');
  });

  test('a registry behind a faulty proxy: 5xx, resets and a 10-minute outage during compose and during promotion', async () => {
    const compose = outageWorlds.compose!;
    const promote = outageWorlds.promote!;
    // One outage window for both runs: each proxy goes down at its run's stage (the first blob
    // upload of compose; the promotion's first request to the stable repository).
    const stableOf = (w: TestWorld) => `/v2/${w.info.stream.stable.slice(w.info.registry.host.length + 1)}/`;
    const candidateUpload = `/v2/${compose.world.info.stream.candidate.slice(compose.world.info.registry.host.length + 1)}/blobs/uploads/`;
    const pc = await startFaultProxy({
      target: compose.world.info.registry.host,
      faultRate: 0.08,
      seed: 13,
      outageAt: (req) => req.method === 'POST' && !!req.url?.startsWith(candidateUpload),
      outageMs: OUTAGE_MS,
    });
    const pp = await startFaultProxy({
      target: promote.world.info.registry.host,
      faultRate: 0.08,
      seed: 17,
      outageAt: (req) => !!req.url?.startsWith(stableOf(promote.world)),
      outageMs: OUTAGE_MS,
    });
    proxies.push(pc, pp);
    const runs = await Promise.all(
      [
        { lane: compose, proxy: pc, stage: 'compose', types: ['composeCandidate'] },
        {
          lane: promote,
          proxy: pp,
          stage: 'promote',
          types: ['readTagDigests', 'copyImageByDigest', 'signImage', 'attestProvenance'],
        },
      ].map(async ({ lane, proxy, stage, types }) => {
        const proxied: Lane = { ...lane, world: await throughProxy(lane.world, proxy) };
        await startLaneWorker(proxied);
        lane.worker = proxied.worker;
        await newRecipeCommit(lane.world, `outage during ${stage}`);
        const before = await auditTags(lane.world);
        const handle = await trigger(proxied);
        // Until the outage is over (or the run ended without meeting it, which the checks below catch).
        await Promise.race([proxy.outageOver, handle.result().catch(() => undefined)]);
        const stageAtOutage = (await handle.query(progressQuery).catch(() => undefined)) as RunProgress | undefined;
        const check = await checkRun(lane, handle, before, OUTAGE_MS + 15 * 60_000);
        const attempts = await maxAttempt(handle, (a) => types.includes(a.activityType));
        return { lane, proxy, stage, check, attempts, stageAtOutage };
      }),
    );
    for (const { stage, proxy, check, attempts } of runs) {
      const { errors5xx, resets, outageResets } = proxy.counts;
      const minutes = ((proxy.outage.endedAt! - proxy.outage.startedAt!) / 60_000).toFixed(1);
      others.push({
        run: `registry outage during ${stage}`,
        faults: `${errors5xx} × 5xx, ${resets} connection resets, then ${minutes} min of outage (${outageResets} connections reset)`,
        retries: `${stage} activities ran up to ${attempts} attempts`,
        check,
      });
    }
    const [a, b] = [pc.outage, pp.outage];
    const overlap = Math.min(a.endedAt!, b.endedAt!) - Math.max(a.startedAt!, b.startedAt!);
    for (const { stage, proxy, check, attempts, stageAtOutage } of runs) {
      assert.ok(correct(check), `${stage}: ${JSON.stringify(check)}`);
      assert.ok(
        proxy.counts.errors5xx > 0 && proxy.counts.resets > 0,
        `${stage}: the proxy injected 5xx and resets (${JSON.stringify(proxy.counts)})`,
      );
      assert.ok(proxy.counts.outageResets > 0, `${stage}: the run met the outage`);
      assert.ok(attempts >= 2, `${stage}: its activities were retried (${attempts} attempts)`);
      assert.equal(stageAtOutage?.stage, stage, `${stage}: the run was still in ${stage} when the outage ended`);
    }
    assert.ok(overlap > OUTAGE_MS / 2, 'the two outages were one window');
  });
});

test('the Temporal dev server restarted mid-run: the run completes correctly', async () => {
  const lane = lanes[0]!;
  await startLaneWorker(lane);
  await newRecipeCommit(lane.world, 'temporal restart');
  const before = await auditTags(lane.world);
  const handle = await trigger(lane);
  for (;;) {
    const p = (await handle.query(progressQuery)) as RunProgress;
    if (p.stage === 'compose' || p.outcome) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const address = (await ensureTemporal({ stateDir: TEMPORAL_STATE })).address;
  await stopTemporal({ stateDir: TEMPORAL_STATE });
  const restarted = await ensureTemporal({ stateDir: TEMPORAL_STATE });
  assert.equal(restarted.address, address, 'the same port');
  assert.equal(restarted.reused, false, 'a new server process');
  const check = await checkRun(lane, handle, before);
  others.push({
    run: 'Temporal dev server restarted during compose',
    faults: 'same port and database',
    retries: '–',
    check,
  });
  assert.ok(correct(check), JSON.stringify(check));
});

test('the watcher saw only signed digests behind stable tags; the table is in docs/failures.md', async () => {
  await watcher.stop();
  const verified = [...watcher.digests.values()];
  if (FULL) await writeTable();
  assert.ok(watcher.samples > 0 && watcher.observations > 0, 'the watcher read stable tags');
  assert.deepEqual(watcher.unsigned, [], 'no stable tag pointed at an unsigned digest');
  assert.ok(
    verified.every((v) => v === true),
    'cosign verifies every digest seen behind a stable tag',
  );
});

/** One boundary: a run whose worker dies there, a new worker, and the final state. */
async function killAt(lane: Lane, boundary: Boundary, index: number): Promise<KillRow> {
  await stopLaneWorker(lane);
  await newRecipeCommit(lane.world, `kill after ${boundary.activityType} #${boundary.activityId} ${boundary.event}`);
  const before = await auditTags(lane.world);
  const armed = await startLaneWorker(lane, boundary);
  let killed = false;
  let over = false;
  const replaced = new Promise<void>((resolve) =>
    armed.once('exit', () => {
      if (over) return; // stopped after a run that never reached the boundary
      killed = armed.signalCode === 'SIGKILL';
      // A new worker at once, as a supervisor would start one.
      void startLaneWorker(lane).then(() => resolve(), resolve);
    }),
  );
  const handle = await trigger(lane);
  const check = await checkRun(lane, handle, before);
  over = !killed;
  if (killed) await replaced;
  let evidence: string;
  let landed: boolean;
  if (boundary.event === 'completed') {
    const events = await historyOf(handle);
    const timedOut = events.filter((e) => e.workflowTaskTimedOutEventAttributes).length;
    evidence = `${timedOut} workflow task(s) timed out`;
    landed = timedOut > 0;
  } else {
    const attempts = await maxAttempt(handle, (a) => a.activityId === boundary.activityId);
    evidence = `${boundary.activityType} ran ${attempts} attempts`;
    landed = attempts >= 2;
  }
  return { index, boundary, killed, evidence, landed, check };
}

let writing = Promise.resolve();

/** The suite's section of docs/failures.md, between the markers (added at the end the first time). */
function writeTable(progress?: string): Promise<void> {
  writing = writing.then(() => writeSection(progress));
  return writing;
}

async function writeSection(progress?: string): Promise<void> {
  const yes = (b: boolean) => (b ? 'yes' : '**no**');
  const cells = (c: RunCheck) =>
    `${c.outcome} | ${c.releases} | ${yes(c.stableIsTested)} | ${yes(c.verifies && c.signatures === 1)}`;
  const correctRows = rows.filter((r) => r.killed && r.landed && correct(r.check)).length;
  const signed = [...watcher.digests.values()].filter((v) => v === true).length;
  const lines = [
    BEGIN,
    '## The fault suite',
    '',
    `Written by \`test/integration/faults.test.ts\` (\`KZ_FAULTS=1 npm test\`, or the file alone) on ${new Date().toISOString().slice(0, 10)}.`,
    'A reference run of a one-kernel synthetic world (akmods rebuilt, so every stage works) gives the',
    'boundaries: every ActivityTaskScheduled, ActivityTaskStarted and ActivityTaskCompleted event of its',
    'history. For each, a new run (a new recipe commit, so it really promotes) on a worker that SIGKILLs',
    'itself with its process group there: after *scheduled* it dies as the activity reaches it, after',
    '*started* once the activity did its work but before reporting it, after *completed* in the workflow',
    'task that follows (test/support/fault-worker.ts). A new worker starts at once. Correct means:',
    'outcome promoted, exactly one release recorded by the stream and one audit tag, `latest` at the',
    'digest the run tested, that digest signed once and verified by cosign.',
    '',
    ...(progress ? [`**Not the final table: written while the suite ran (${progress}).**`, ''] : []),
    `**Boundaries killed: ${rows.filter((r) => r.killed).length}, runs correct: ${correctRows}** (of ${rows.length} boundaries).`,
    `A watcher read every stable tag of every world of the suite from the registries over HTTP, ${watcher.samples} times:`,
    `${watcher.observations} tag observations, ${watcher.digests.size} distinct digests (${signed} verified by cosign), **${watcher.unsigned.length} unsigned**.`,
    '',
    '| # | activity (id) | killed after | worker killed | the kill in the history | outcome | releases | stable = tested | signed | correct |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...[...rows]
      .sort((a, b) => a.index - b.index)
      .map(
        (r) =>
          `| ${r.index} | ${r.boundary.activityType} (${r.boundary.activityId}) | ${r.boundary.event} | ${yes(r.killed)} | ${r.evidence} | ${cells(r.check)} | ${yes(r.killed && r.landed && correct(r.check))} |`,
      ),
    '',
    "Registry faults come from a loopback proxy (test/support/fault-proxy.ts) the world's config points",
    'at: seeded 5xx answers and connection resets (in turn) on 8 % of requests throughout, and an outage (every connection',
    "reset) that starts at the compose's first blob upload in one world and at the promotion's first",
    'request in another, both runs in one window.',
    '',
    '| run | faults | retries | outcome | releases | stable = tested | signed | correct |',
    '|---|---|---|---|---|---|---|---|',
    ...others.map((o) => `| ${o.run} | ${o.faults} | ${o.retries} | ${cells(o.check)} | ${yes(correct(o.check))} |`),
    END,
  ];
  const doc = await readFile(DOC, 'utf8');
  const start = doc.indexOf(BEGIN);
  const end = doc.indexOf(END);
  const section = lines.join('\n');
  await writeFile(
    DOC,
    start >= 0 && end > start
      ? `${doc.slice(0, start)}${section}${doc.slice(end + END.length)}`
      : `${doc.trimEnd()}\n\n${section}\n`,
  );
}
