/**
 * Integration: the project's own services (Temporal dev server, registry, static HTTP server) are
 * reused while running and come back with their data after being killed. Uses its own state
 * folder so it never disturbs the Temporal server other tests or the demo use.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  SEARCH_ATTRIBUTES,
  ensureHttpServer,
  ensureRegistry,
  ensureTemporal,
  stopHttpServer,
  stopRegistry,
  stopTemporal,
} from '../../world/services.ts';
import { REPO_ROOT, containersConfFile, temporalBin } from '../../world/tools.ts';
import { logSize, logTail, serviceEnv, startDetached, waitForStart } from '../../services/daemon.ts';

const stateDir = resolve(REPO_ROOT, '.state/test-services');

/** Whether a process has ended (gone, or a zombie its parent has not reaped yet), waiting up to 10 s. */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined);
    if (stat === undefined || /^\S+ \(.*\) [ZX] /.test(stat)) return true;
    await sleep(100);
  }
  return false;
}

async function killAndWait(pid: number): Promise<void> {
  process.kill(pid, 'SIGKILL');
  if (!(await gone(pid))) throw new Error(`process ${pid} survived SIGKILL`);
}

describe('project services', () => {
  before(async () => {
    await mkdir(stateDir, { recursive: true });
  });
  after(async () => {
    await stopTemporal({ stateDir });
    await stopRegistry({ dir: stateDir });
    await stopHttpServer({ dir: stateDir });
  });

  test('ensureTemporal starts a dev server once, registers the search attributes and keeps runs for 30 days', async () => {
    const first = await ensureTemporal({ stateDir });
    const second = await ensureTemporal({ stateDir });
    assert.equal(second.reused, true);
    assert.equal(second.pid, first.pid);
    assert.equal(second.address, first.address);
    const list = await execa(temporalBin(), [
      'operator',
      'search-attribute',
      'list',
      '--address',
      first.address,
      '--output',
      'json',
    ]);
    for (const a of SEARCH_ATTRIBUTES)
      assert.ok(list.stdout.includes(`"${a.name}"`), `search attribute ${a.name} registered`);
    const ns = await execa(temporalBin(), [
      'operator',
      'namespace',
      'describe',
      '--address',
      first.address,
      '--namespace',
      'default',
    ]);
    assert.match(ns.stdout, /720h/);
    const ui = await fetch(second.uiUrl);
    assert.equal(ui.status, 200);
    await ui.arrayBuffer();
  });

  test('a killed Temporal dev server comes back on the same address with its workflows', async () => {
    const t = await ensureTemporal({ stateDir });
    const id = `kz-services-test-${Date.now()}`;
    await execa(temporalBin(), [
      'workflow',
      'start',
      '--address',
      t.address,
      '--type',
      'KzNoSuchWorkflow',
      '--task-queue',
      'kz-services-test',
      '--workflow-id',
      id,
    ]);
    await killAndWait(t.pid);
    const back = await ensureTemporal({ stateDir });
    assert.equal(back.reused, false);
    assert.notEqual(back.pid, t.pid);
    assert.equal(back.address, t.address);
    const described = await execa(
      temporalBin(),
      ['workflow', 'describe', '--address', back.address, '--workflow-id', id, '--output', 'json'],
      { reject: false },
    );
    assert.equal(described.exitCode, 0, described.stderr);
    assert.ok(described.stdout.includes(id));
    const listed = await execa(temporalBin(), [
      'workflow',
      'list',
      '--address',
      back.address,
      '--query',
      `WorkflowId = '${id}'`,
      '--output',
      'json',
    ]);
    assert.ok(listed.stdout.includes(id), `workflow list shows ${id} after the restart`);
    await execa(
      temporalBin(),
      ['workflow', 'terminate', '--address', back.address, '--workflow-id', id, '--reason', 'test done'],
      { reject: false },
    );
  });

  test('a killed registry comes back on the same host with its images', async () => {
    const reg = await ensureRegistry({ dir: stateDir });
    assert.equal((await ensureRegistry({ dir: stateDir })).reused, true);
    const env = { CONTAINERS_CONF: await containersConfFile(stateDir) };
    const ctr = (await execa('buildah', ['from', 'scratch'], { env })).stdout.trim();
    const marker = `kill-test-${Date.now()}`;
    try {
      await execa('buildah', ['config', '--label', `kz.test=${marker}`, ctr], { env });
      await execa('buildah', ['commit', '--quiet', ctr, `localhost/kz-services-test:${marker}`], { env });
    } finally {
      await execa('buildah', ['rm', ctr], { env, reject: false });
    }
    await execa(
      'buildah',
      [
        'push',
        '--quiet',
        '--tls-verify=false',
        `localhost/kz-services-test:${marker}`,
        `docker://${reg.host}/kz/services-test:${marker}`,
      ],
      { env },
    );
    await execa('buildah', ['rmi', `localhost/kz-services-test:${marker}`], { env, reject: false });
    await killAndWait(reg.pid);
    const back = await ensureRegistry({ dir: stateDir });
    assert.equal(back.reused, false);
    assert.equal(back.host, reg.host);
    const inspected = JSON.parse(
      (await execa('skopeo', ['inspect', '--tls-verify=false', `docker://${back.host}/kz/services-test:${marker}`]))
        .stdout,
    );
    assert.equal(inspected.Labels['kz.test'], marker);
  });

  test('a killed static HTTP server comes back on the same port serving the same folder', async () => {
    const root = join(stateDir, 'www');
    await rm(root, { recursive: true, force: true });
    await mkdir(join(root, 'a'), { recursive: true });
    const body = `served ${Date.now()}\n`;
    await writeFile(join(root, 'a', 'META'), body);
    const h = await ensureHttpServer({ dir: stateDir, root });
    assert.equal(await (await fetch(`${h.url}/a/META`)).text(), body);
    await killAndWait(h.pid);
    const back = await ensureHttpServer({ dir: stateDir, root });
    assert.equal(back.reused, false);
    assert.equal(back.url, h.url);
    assert.equal(await (await fetch(`${back.url}/a/META`)).text(), body);
  });

  test('the services start with their own environment: the exported REGISTRY_AUTH_FILE and TEMPORAL_ADDRESS do not reach them', async () => {
    const dir = join(stateDir, 'env-test');
    await stopRegistry({ dir });
    await rm(dir, { recursive: true, force: true });
    const saved = { ...process.env };
    // docker-registry reads REGISTRY_* as configuration: REGISTRY_AUTH_FILE stopped it at start
    // with "cannot unmarshal … into configuration.Parameters" when it inherited the caller's environment.
    process.env.REGISTRY_AUTH_FILE = join(dir, 'auth.json');
    process.env.REGISTRY_HTTP_ADDR = '127.0.0.1:1';
    process.env.TEMPORAL_ADDRESS = '127.0.0.1:1';
    try {
      const reg = await ensureRegistry({ dir });
      assert.equal(reg.reused, false);
      assert.equal((await fetch(`http://${reg.host}/v2/`)).status, 200);
      const environ = (await readFile(`/proc/${reg.pid}/environ`, 'utf8')).split('\0');
      assert.ok(!environ.some((v) => v.startsWith('REGISTRY_') || v.startsWith('TEMPORAL_')), environ.join(' '));
      assert.ok(
        environ.some((v) => v.startsWith('PATH=')),
        'PATH is passed',
      );
    } finally {
      process.env = saved;
      await stopRegistry({ dir });
    }
  });

  test('a service that dies at start is reported at once with the last lines of its log', async () => {
    const log = join(stateDir, 'dies', 'dies.log');
    await rm(join(stateDir, 'dies'), { recursive: true, force: true });
    await mkdir(join(stateDir, 'dies'), { recursive: true });
    await writeFile(log, 'an earlier start that went well\n');
    const since = await logSize(log);
    const pid = await startDetached({
      file: 'sh',
      args: ['-c', 'echo "configuration error: the cause is here" >&2; exit 3'],
      logFile: log,
      env: serviceEnv(),
    });
    const t0 = Date.now();
    assert.equal(await waitForStart(pid, async () => false, 20_000), 'exited');
    assert.ok(Date.now() - t0 < 10_000, 'noticed before the start timeout');
    const tail = await logTail(log, since);
    assert.match(tail, /configuration error: the cause is here/);
    assert.doesNotMatch(tail, /an earlier start/, 'only what this start wrote');
    assert.equal(await logTail(join(stateDir, 'dies', 'missing.log')), '');
  });

  test('stopping the services ends their processes', async () => {
    const t = await ensureTemporal({ stateDir });
    assert.equal(await stopTemporal({ stateDir }), true);
    assert.ok(await gone(t.pid), `process ${t.pid} is gone`);
    assert.equal(await stopTemporal({ stateDir }), false);
  });
});
