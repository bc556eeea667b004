/**
 * RegistryClient and scanLayers against a real Debian `docker-registry` on loopback, with images
 * built and pushed by buildah and checked with skopeo. No mocks.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { createReadStream } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { execa } from 'execa';
import type { ResultPromise } from 'execa';
import { extract } from 'tar-stream';
import { RegistryClient } from '../../activities/registry-http.ts';
import { scanLayers } from '../../activities/layer-reader.ts';
import type { LayerEntry } from '../../activities/layer-reader.ts';
import { FailureType, PermanentError } from '../../core/errors.ts';
import { containersConfFile } from '../../world/tools.ts';

// The project's own containers.conf (runc, ulimits), written into the state folder, never a session path.
const CONTAINERS_CONF = await containersConfFile();
const USER = 'kzuser';
const PASSWORD = 'kz-secret-Pa55';

interface Registry {
  host: string;
  proc: ResultPromise;
  logFile: string;
  log: () => Promise<string>;
}

let work: string;
let open: Registry;
let locked: Registry;
let authFile: string;
const images: Record<string, { ref: string; digest: string }> = {};

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

async function startRegistry(name: string, htpasswdFile?: string): Promise<Registry> {
  const dir = join(work, name);
  await mkdir(join(dir, 'storage'), { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const auth = htpasswdFile ? `auth:\n  htpasswd:\n    realm: kz-test\n    path: ${htpasswdFile}\n` : '';
  const config = `version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: ${join(dir, 'storage')}
  delete:
    enabled: true
http:
  addr: ${host}
${auth}`;
  await writeFile(join(dir, 'config.yml'), config);
  const logFile = join(dir, 'registry.log');
  const proc = execa('docker-registry', ['serve', join(dir, 'config.yml')], {
    stdout: { file: logFile },
    stderr: { file: logFile },
    reject: false,
  });
  for (let i = 0; i < 100; i++) {
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) {
        return { host, proc, logFile, log: () => readFile(logFile, 'utf8') };
      }
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  proc.kill();
  throw new Error(`docker-registry did not start on ${host}; see ${logFile}`);
}

function buildah(args: string[]) {
  return execa(
    'buildah',
    ['--root', join(work, 'storage'), '--runroot', join(work, 'run'), '--storage-driver', 'vfs', ...args],
    {
      env: { CONTAINERS_CONF },
    },
  );
}

/** Builds a FROM-scratch image from a folder with labels and pushes it; returns its digest. */
async function buildAndPush(opts: {
  dir: string;
  labels: Record<string, string>;
  ref: string;
  format?: 'oci' | 'v2s2';
}): Promise<string> {
  const ctr = (await buildah(['from', 'scratch'])).stdout.trim();
  await buildah(['copy', ctr, opts.dir, '/']);
  await buildah(['config', ...Object.entries(opts.labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]), ctr]);
  const local = `localhost/kz-${Math.random().toString(36).slice(2)}`;
  await buildah(['commit', '--rm', ctr, local]);
  const digestFile = join(work, `digest-${Math.random().toString(36).slice(2)}`);
  await buildah([
    'push',
    '--tls-verify=false',
    '--digestfile',
    digestFile,
    ...(opts.format === 'v2s2' ? ['-f', 'v2s2'] : []),
    local,
    `docker://${opts.ref}`,
  ]);
  return (await readFile(digestFile, 'utf8')).trim();
}

async function skopeoInspect(ref: string, extra: string[] = []): Promise<any> {
  const { stdout } = await execa('skopeo', ['inspect', '--tls-verify=false', ...extra, `docker://${ref}`]);
  return JSON.parse(stdout);
}

/** Member names of a gzip tar file on disk. */
async function tarNames(file: string): Promise<string[]> {
  const names: string[] = [];
  const ex = extract();
  ex.on('entry', (h, s, next) => {
    names.push(h.name);
    s.on('end', () => next());
    s.resume();
  });
  await pipeline(createReadStream(file), createGunzip(), ex);
  return names;
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'kz-registry-test-'));
  const { stdout: htpasswdLine } = await execa('htpasswd', ['-nbB', USER, PASSWORD]);
  await writeFile(join(work, 'htpasswd'), `${htpasswdLine.trim()}\n`);
  authFile = join(work, 'auth.json');
  open = await startRegistry('open');
  locked = await startRegistry('locked', join(work, 'htpasswd'));
  await writeFile(
    authFile,
    JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') } } }),
  );

  // Two per-kernel images (one OCI, one Docker schema 2) and one "base" with a symlink.
  const k1 = join(work, 'ctx-k1');
  await mkdir(join(k1, 'rpms/kmods/zfs'), { recursive: true });
  // Incompressible, so that "no layer bytes read" is a visible difference.
  await writeFile(
    join(k1, 'rpms/kmods/zfs/kmod-zfs-6.18.9-200.fc43.x86_64-2.4.4-1.fc43.x86_64.rpm'),
    randomBytes(2 * 1024 * 1024),
  );
  const k2 = join(work, 'ctx-k2');
  await mkdir(join(k2, 'rpms/kmods/zfs'), { recursive: true });
  await writeFile(join(k2, 'rpms/kmods/zfs/kmod-zfs-6.18.10-200.fc43.x86_64-2.4.4-1.fc43.x86_64.rpm'), 'rpm two\n');
  const base = join(work, 'ctx-base');
  await mkdir(join(base, 'usr/lib/modules/6.18.9-200.fc43.x86_64'), { recursive: true });
  await writeFile(join(base, 'usr/lib/modules/6.18.9-200.fc43.x86_64/vmlinuz'), 'kernel\n');
  await symlink('usr/lib', join(base, 'lib'));

  const k1Ref = `${open.host}/kz/akmods-k1:latest`;
  const k2Ref = `${open.host}/kz/akmods-k2:latest`;
  const baseRef = `${open.host}/kz/base:latest`;
  images.k1 = {
    ref: k1Ref,
    digest: await buildAndPush({ dir: k1, labels: { 'ostree.linux': '6.18.9-200.fc43.x86_64' }, ref: k1Ref }),
  };
  images.k2 = {
    ref: k2Ref,
    digest: await buildAndPush({
      dir: k2,
      labels: { 'ostree.linux': '6.18.10-200.fc43.x86_64' },
      ref: k2Ref,
      format: 'v2s2',
    }),
  };
  images.base = {
    ref: baseRef,
    digest: await buildAndPush({
      dir: base,
      labels: { 'ostree.linux': '6.18.9-200.fc43.x86_64', 'org.opencontainers.image.version': '43.20261120.0' },
      ref: baseRef,
    }),
  };
  // The same image in the password-protected registry.
  await execa('skopeo', [
    'copy',
    '--src-tls-verify=false',
    '--dest-tls-verify=false',
    '--dest-authfile',
    authFile,
    `docker://${k1Ref}`,
    `docker://${locked.host}/kz/akmods-k1:latest`,
  ]);
});

after(async () => {
  open?.proc.kill();
  locked?.proc.kill();
  await Promise.allSettled([open?.proc, locked?.proc]);
  if (work) await rm(work, { recursive: true, force: true });
});

describe('RegistryClient against docker-registry', () => {
  test('resolveDigest returns the digest skopeo inspect reports and buildah pushed', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    for (const img of Object.values(images)) {
      const digest = await client.resolveDigest(img.ref);
      assert.equal(digest, (await skopeoInspect(img.ref)).Digest);
      assert.equal(digest, img.digest);
    }
  });

  test('resolveDigest returns undefined for a missing tag and a missing repository', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    assert.equal(await client.resolveDigest(`${open.host}/kz/akmods-k1:no-such-tag`), undefined);
    assert.equal(await client.resolveDigest(`${open.host}/kz/no-such-repo:latest`), undefined);
  });

  test('getImage of a missing tag throws ImageNotFound', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    await assert.rejects(client.getImage(`${open.host}/kz/akmods-k1:no-such-tag`), (err: unknown) => {
      assert.ok(err instanceof PermanentError);
      assert.equal(err.type, FailureType.ImageNotFound);
      assert.match(err.message, /no-such-tag/);
      return true;
    });
  });

  test('getImage reads the labels and layers skopeo inspect reports, for OCI and Docker schema 2 images', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    for (const img of Object.values(images)) {
      const info = await client.getImage(img.ref);
      const inspected = await skopeoInspect(img.ref);
      assert.deepEqual(info.labels, inspected.Labels);
      assert.deepEqual(
        info.layers.map((l) => l.digest),
        inspected.Layers,
      );
      assert.equal(info.digest, img.digest);
    }
    const k2 = await client.getImage(images.k2!.ref);
    assert.equal(k2.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  });

  test('getImage of an image index picks the linux/amd64 image', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    const listRef = `${open.host}/kz/akmods-k1:list`;
    await buildah(['manifest', 'create', 'localhost/kz-list']);
    await buildah([
      'manifest',
      'add',
      '--tls-verify=false',
      '--arch',
      'amd64',
      '--os',
      'linux',
      'localhost/kz-list',
      `docker://${images.k1!.ref}`,
    ]);
    await buildah(['manifest', 'push', '--all', '--tls-verify=false', 'localhost/kz-list', `docker://${listRef}`]);
    const fetched = await client.getManifest(listRef);
    assert.equal(fetched.mediaType, 'application/vnd.oci.image.index.v1+json');
    assert.equal(fetched.digest, await client.resolveDigest(listRef));
    const info = await client.getImage(listRef);
    assert.equal(info.indexDigest, fetched.digest);
    assert.equal(info.digest, images.k1!.digest);
    assert.equal(info.labels['ostree.linux'], '6.18.9-200.fc43.x86_64');
  });

  test('scanLayers reports the files, directories and symlinks put into the image', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    const seen: { index: number; entry: LayerEntry }[] = [];
    const layers: string[] = [];
    const result = await scanLayers({
      client,
      ref: images.base!.ref,
      onEntry: (index, entry) => seen.push({ index, entry }),
      onLayer: (_i, digest) => layers.push(digest),
    });
    const info = await client.getImage(images.base!.ref);
    assert.deepEqual(
      layers,
      info.layers.map((l) => l.digest),
    );
    assert.equal(result.layersRead, info.layers.length);
    assert.equal(
      result.bytesRead,
      info.layers.reduce((n, l) => n + l.size, 0),
    );
    const byName = new Map(seen.map((s) => [s.entry.name.replace(/^\.?\//, '').replace(/\/$/, ''), s.entry.type]));
    assert.equal(byName.get('usr/lib/modules/6.18.9-200.fc43.x86_64/vmlinuz'), 'file');
    assert.equal(byName.get('lib'), 'symlink');
    assert.equal(byName.get('usr/lib/modules/6.18.9-200.fc43.x86_64'), 'directory');
  });

  test('scanLayers reads Docker schema 2 gzip layers and passes a consumer error through unchanged', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    const names: string[] = [];
    await scanLayers({ client, ref: images.k2!.ref, onEntry: (_i, e) => names.push(e.name) });
    assert.ok(names.some((n) => n.endsWith('rpms/kmods/zfs/kmod-zfs-6.18.10-200.fc43.x86_64-2.4.4-1.fc43.x86_64.rpm')));
    const boom = new Error('consumer rejected a header');
    await assert.rejects(
      scanLayers({
        client,
        ref: images.k2!.ref,
        onEntry: () => {
          throw boom;
        },
      }),
      (err: unknown) => err === boom,
    );
  });

  test('scanLayers reads nothing for skipped layers and stops when aborted', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    const info = await client.getImage(images.k1!.ref);
    const entries: string[] = [];
    const result = await scanLayers({
      client,
      ref: images.k1!.ref,
      skipLayerDigests: info.layers.map((l) => l.digest),
      onEntry: (_i, e) => entries.push(e.name),
    });
    assert.deepEqual(result, { layersRead: 0, bytesRead: 0 });
    assert.deepEqual(entries, []);
    const ac = new AbortController();
    ac.abort(new Error('stop now'));
    await assert.rejects(scanLayers({ client, ref: images.k1!.ref, onEntry: () => {}, signal: ac.signal }), /stop now/);
  });

  test('assembleImage merges two images by mounting layers, without reading them, deterministically', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host] });
    const k1 = await client.getImage(images.k1!.ref);
    const k2 = await client.getImage(images.k2!.ref);
    const target = `${open.host}/kz/akmods-cache`;
    const labels = {
      'io.github.danathar.kinoite-zfs.akmods.cache-format': '1',
      'io.github.danathar.kinoite-zfs.akmods.kernel-releases': '6.18.9-200.fc43.x86_64 6.18.10-200.fc43.x86_64',
      'io.github.danathar.kinoite-zfs.akmods.zfs-version': '2.4.4',
    };
    const logBefore = (await open.log()).length;
    const measured = new RegistryClient({ insecureHosts: [open.host] });
    const { digest } = await measured.assembleImage({
      repo: target,
      layersFrom: [
        { repo: `${open.host}/kz/akmods-k1`, digest: images.k1!.digest },
        { repo: `${open.host}/kz/akmods-k2`, digest: images.k2!.digest },
        // A repeated source adds no layers.
        { repo: `${open.host}/kz/akmods-k1`, digest: images.k1!.digest },
      ],
      labels,
      tag: 'main-43',
    });
    const layerBytes = [...k1.layers, ...k2.layers].reduce((n, l) => n + l.size, 0);
    console.log(`assembleImage(2 images): ${JSON.stringify(measured.stats)}; layer bytes avoided: ${layerBytes}`);
    // Only the two source configs are read; no layer byte moves.
    assert.equal(measured.stats.blobBytesRead, k1.manifest.config.size + k2.manifest.config.size);
    assert.ok(layerBytes > 2 * 1024 * 1024);
    assert.equal(measured.stats.blobsMounted, k1.layers.length + k2.layers.length);
    assert.equal(measured.stats.blobsCopied, 0);
    const log = (await open.log()).slice(logBefore);
    assert.match(log, /mount=sha256/);
    for (const l of [...k1.layers, ...k2.layers]) {
      assert.doesNotMatch(
        log,
        new RegExp(`method=GET[^\\n]*uri="?/v2/[^ ]*/blobs/${l.digest}`),
        `layer ${l.digest} was downloaded`,
      );
    }

    const inspected = await skopeoInspect(`${target}:main-43`);
    assert.equal(inspected.Digest, digest);
    assert.deepEqual(
      inspected.Layers,
      [...k1.layers, ...k2.layers].map((l) => l.digest),
    );
    assert.deepEqual(inspected.Labels, labels);
    assert.equal(inspected.Architecture, 'amd64');
    assert.equal(inspected.Os, 'linux');

    // skopeo can pull it, and its layers hold both kernels' RPMs.
    const out = join(work, 'pulled');
    await execa('skopeo', ['copy', '--src-tls-verify=false', `docker://${target}@${digest}`, `dir:${out}`]);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8'));
    const names: string[] = [];
    for (const l of manifest.layers) names.push(...(await tarNames(join(out, l.digest.slice('sha256:'.length)))));
    assert.ok(names.some((n) => n.endsWith('kmod-zfs-6.18.9-200.fc43.x86_64-2.4.4-1.fc43.x86_64.rpm')));
    assert.ok(names.some((n) => n.endsWith('kmod-zfs-6.18.10-200.fc43.x86_64-2.4.4-1.fc43.x86_64.rpm')));
    assert.ok((await readdir(out)).length >= 4);

    // Same inputs, same digest; different labels, different digest.
    const again = await client.assembleImage({
      repo: target,
      layersFrom: [
        { repo: `${open.host}/kz/akmods-k1`, digest: images.k1!.digest },
        { repo: `${open.host}/kz/akmods-k2`, digest: images.k2!.digest },
      ],
      labels: Object.fromEntries(Object.entries(labels).reverse()),
    });
    assert.equal(again.digest, digest);
    const other = await client.assembleImage({
      repo: target,
      layersFrom: [{ repo: `${open.host}/kz/akmods-k1`, digest: images.k1!.digest }],
      labels: { a: 'b' },
    });
    assert.notEqual(other.digest, digest);
    assert.deepEqual(await client.listTags(target), ['main-43']);
  });

  test('assembleImage into another registry copies the blobs through the client', async () => {
    const client = new RegistryClient({ insecureHosts: [open.host, locked.host], authFile });
    const { digest } = await client.assembleImage({
      repo: `${locked.host}/kz/merged`,
      layersFrom: [{ repo: `${open.host}/kz/akmods-k2`, digest: images.k2!.digest }],
      labels: { merged: 'yes' },
      tag: 'v1',
    });
    const k2 = await client.getImage(images.k2!.ref);
    assert.equal(client.stats.blobsCopied, k2.layers.length);
    const inspected = await skopeoInspect(`${locked.host}/kz/merged:v1`, ['--authfile', authFile]);
    assert.equal(inspected.Digest, digest);
    assert.deepEqual(
      inspected.Layers,
      k2.layers.map((l) => l.digest),
    );
    assert.deepEqual(inspected.Labels, { merged: 'yes' });
  });

  test('a password-protected registry answers with the auth file and refuses with AuthDenied without it', async () => {
    const ref = `${locked.host}/kz/akmods-k1:latest`;
    const withAuth = new RegistryClient({ insecureHosts: [locked.host], authFile });
    assert.equal(await withAuth.resolveDigest(ref), images.k1!.digest);
    assert.equal((await withAuth.getImage(ref)).labels['ostree.linux'], '6.18.9-200.fc43.x86_64');
    const anonymous = new RegistryClient({ insecureHosts: [locked.host] });
    await assert.rejects(anonymous.getImage(ref), (err: unknown) => {
      assert.ok(err instanceof PermanentError);
      assert.equal(err.type, FailureType.AuthDenied);
      return true;
    });
    const wrongFile = join(work, 'wrong-auth.json');
    await writeFile(
      wrongFile,
      JSON.stringify({ auths: { [locked.host]: { auth: Buffer.from(`${USER}:nope`).toString('base64') } } }),
    );
    const wrong = new RegistryClient({ insecureHosts: [locked.host], authFile: wrongFile });
    await assert.rejects(wrong.resolveDigest(ref), (err: unknown) => {
      assert.ok(err instanceof PermanentError);
      assert.equal(err.type, FailureType.AuthDenied);
      assert.doesNotMatch(err.message, new RegExp(`nope|${Buffer.from(`${USER}:nope`).toString('base64')}`));
      return true;
    });
  });

  test('a stopped registry gives a retryable plain Error that names the host', async () => {
    const port = await freePort();
    const client = new RegistryClient({ insecureHosts: [`127.0.0.1:${port}`] });
    await assert.rejects(client.getImage(`127.0.0.1:${port}/kz/x:latest`), (err: unknown) => {
      assert.ok(!(err instanceof PermanentError));
      assert.match((err as Error).message, new RegExp(`127\\.0\\.0\\.1:${port}`));
      return true;
    });
  });
});
