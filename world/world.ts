/**
 * Bringing a hermetic world up and down: the registry, the OpenZFS release source, base and
 * builder images, the recipe git repository, a cosign key pair and a ready `DIR/config.yaml`,
 * all real and on loopback. A second `worldUp` on the same folder reuses everything and takes seconds.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, chmod, copyFile, cp, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { execa } from 'execa';
import { stringify as toYaml } from 'yaml';
import { parseConfig } from '../core/config-parse.ts';
import { readRecord, withLock, writeAtomic, writeRecord } from '../services/daemon.ts';
import { baseTags, buildAndPushBase, buildAndPushBuilder } from './images.ts';
import type { PushedBaseVersion } from './images.ts';
import { RegistryClient } from '../activities/registry-http.ts';
import { treeHash } from '../activities/tree-hash.ts';
import { BUILDER_ROOTFS_RECIPE, ensureRootfsImage, rootfsHash } from './rootfs.ts';
import {
  ensureHttpServer,
  ensureRegistry,
  ensureTokenIssuer,
  stopHttpServer,
  stopRegistry,
  stopTokenIssuer,
  type RegistryTokenAuth,
} from './services.ts';
import { passwordHash } from './token-issuer.ts';
import { ensureTemporal, stopTemporal } from '../services/temporal-dev-server.ts';
import { stopWorldWorker } from './worker-process.ts';
import { loadWorldSpec } from './spec.ts';
import type { SyntheticRelease, WorldSpec, ZfsRelease } from './spec.ts';
import { openzfsDir, readRealRelease, type RealRelease } from './openzfs-releases.ts';
import { makeZfsSourceTarball, renderMeta } from './zfs-source.ts';
import { REPO_ROOT, cacheRoot, containersConfFile, cosignBin, stateDir as defaultStateDir } from './tools.ts';

/** Everything a test or the demo needs to know about a world (written to `DIR/world.json`). */
export interface WorldInfo {
  /** Spec name. */
  name: string;
  /** Absolute world folder. */
  dir: string;
  /** Spec file it was made from, and the hash of its text. */
  specFile: string;
  specHash: string;
  /** The ready config file. */
  configFile: string;
  /** CONTAINERS_CONF file for podman/buildah in this world. */
  containersConf: string;
  /** The world's OCI registry. */
  registry: {
    host: string;
    logFile: string;
    /**
     * With `registry.auth: token` in the spec: the user whose credentials `authFile` holds (the config's
     * `registries.authFile`), and the token issuer's request log.
     */
    auth?: { user: string; authFile: string; passwordFile: string; tokenLogFile: string };
  };
  /** The OpenZFS release source over HTTP. */
  releaseSource: {
    url: string;
    host: string;
    root: string;
    releasesUrl: string;
    metaUrl: string;
    tarballUrl: string;
    releases: {
      version: string;
      tag: string;
      prerelease: boolean;
      linuxMin: string;
      linuxMax: string;
      metaUrl: string;
      tarballUrl: string;
      tarballFile: string;
      real?: boolean;
    }[];
  };
  /** Temporal the config points at (uiUrl absent when an outside address was given). */
  temporal: { address: string; namespace: string; uiUrl?: string };
  /** Base image repository and every pushed version, oldest first. */
  base: { repository: string; reference: string; versions: PushedBaseVersion[] };
  /** Builder image. */
  builder: { repository: string; reference: string; digest: string };
  /** Recipe git repository. */
  recipe: {
    git: string;
    ref: string;
    path: string;
    head: string;
    commits: { recipes: string; append?: string };
    inputsHash: string;
  };
  /** Cosign key pair (the password only in a 0600 file). */
  signing: { keyFile: string; publicKeyFile: string; passwordFile: string };
  /** The stream written to the config. */
  stream: { name: string; candidate: string; stable: string; akmodsCandidate: string; akmodsStable: string };
  /** Hash of everything the images depend on; images are rebuilt when it changes. */
  imagesKey: string;
  /** When the world was last brought up. */
  updatedAt: string;
}

/** What worldUp reused and how long it took (for the progress summary). */
export interface WorldUpResult {
  info: WorldInfo;
  reused: string[];
  seconds: number;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Git identity and dates for world commits, fixed so the same inputs give the same commits. */
const GIT_ENV = {
  GIT_AUTHOR_NAME: 'kinoite-zfs world',
  GIT_AUTHOR_EMAIL: 'world@kinoite-zfs.invalid',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'kinoite-zfs world',
  GIT_COMMITTER_EMAIL: 'world@kinoite-zfs.invalid',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
} as const;

/**
 * Brings the world described by `specFile` up in `dir` (or reuses what is already there) and
 * writes `dir/config.yaml` and `dir/world.json`. Temporal is the project's dev server unless
 * `temporalAddress` (and its namespace and Web UI) is given.
 */
export async function worldUp(input: {
  specFile: string;
  dir: string;
  temporalAddress?: string;
  /** Namespace on `temporalAddress`. @default 'default' */
  temporalNamespace?: string;
  /** Web UI of `temporalAddress`, for links to runs. */
  temporalWebUrl?: string;
  stateDir?: string;
  log?: (line: string) => void;
}): Promise<WorldUpResult> {
  const dir = resolve(input.dir);
  await loadWorldSpec(resolve(input.specFile)); // a bad spec fails before anything is made
  await mkdir(dir, { recursive: true });
  // Two `world up` on one folder (two terminals, two test files) must not build and push at once.
  return withLock(join(dir, 'world.lock'), () => worldUpLocked(input), 20 * 60_000);
}

async function worldUpLocked(input: {
  specFile: string;
  dir: string;
  temporalAddress?: string;
  /** Namespace on `temporalAddress`. @default 'default' */
  temporalNamespace?: string;
  /** Web UI of `temporalAddress`, for links to runs. */
  temporalWebUrl?: string;
  stateDir?: string;
  log?: (line: string) => void;
}): Promise<WorldUpResult> {
  const t0 = Date.now();
  const log = input.log ?? ((line: string) => console.log(line));
  const dir = resolve(input.dir);
  const specFile = resolve(input.specFile);
  const { spec, text } = await loadWorldSpec(specFile);
  await mkdir(dir, { recursive: true });
  const reused: string[] = [];
  const state = input.stateDir ?? defaultStateDir();
  const containersConf = await containersConfFile(state);
  const prev = await readRecord<WorldInfo>(join(dir, 'world.json'));

  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    const value = await fn();
    log(`${label} ${((Date.now() - started) / 1000).toFixed(1)}s`);
    return value;
  };

  const auth =
    spec.registry.auth === 'token'
      ? await step('registry token issuer…', () => ensureRegistryAuth(dir, spec, reused))
      : undefined;
  if (!auth) await stopTokenIssuer({ dir });
  const registry = await step('registry…', () => ensureRegistry({ dir, token: auth?.token }));
  // The registry's port is known only now; the auth file names it.
  if (auth) await writeAuthFile(auth.authFile, registry.host, auth.user, auth.passwordFile);
  if (registry.reused) reused.push(`registry ${registry.host}`);
  const releaseRoot = join(dir, 'release-source');
  const http = await step('release source…', () => ensureHttpServer({ dir, root: releaseRoot }));
  if (http.reused) reused.push(`release source ${http.url}`);
  let temporal: WorldInfo['temporal'];
  if (input.temporalAddress) {
    temporal = {
      address: input.temporalAddress,
      namespace: input.temporalNamespace ?? 'default',
      ...(input.temporalWebUrl ? { uiUrl: input.temporalWebUrl } : {}),
    };
  } else {
    const t = await step('Temporal dev server…', () => ensureTemporal({ stateDir: state }));
    if (t.reused) reused.push(`Temporal ${t.address}`);
    temporal = { address: t.address, namespace: t.namespace, uiUrl: t.uiUrl };
  }

  const signing = await step('cosign key pair…', () => ensureKeys(join(dir, 'secrets'), reused));
  const releases = await step('ZFS releases…', () =>
    writeReleaseSource({
      root: releaseRoot,
      url: http.url,
      releases: spec.zfs.releases,
      openzfsDir: openzfsDir(spec.zfs.openzfsDir, dirname(specFile)),
      reused,
      log,
    }),
  );
  const recipe = await step('recipe repository…', () =>
    ensureRecipeRepo({
      repo: join(dir, 'recipe-repo'),
      spec,
      publicKeyFile: signing.publicKeyFile,
      prev: prev?.recipe,
      reused,
    }),
  );

  // Real OpenZFS, or real kernels, need a builder with a toolchain (and the kernels' build trees).
  const debianKernels = [
    ...new Set(
      spec.base.versions
        .flatMap((v) => v.kernels)
        .filter((k) => k.kind === 'debian')
        .map((k) => k.release),
    ),
  ];
  const toolchain = debianKernels.length > 0 || spec.zfs.releases.some((r) => r.source === 'openzfs');
  const allDebian = spec.base.versions.every((v) => v.kernels.every((k) => k.kind === 'debian'));
  const imagesKey = sha(
    JSON.stringify({
      base: spec.base,
      builder: spec.builder,
      toolchain,
      rootfs: [rootfsHash(), rootfsHash(BUILDER_ROOTFS_RECIPE)],
      host: registry.host,
      layout: 2,
    }),
  );
  let base: PushedBaseVersion[];
  let builderDigest: string;
  if (prev && prev.imagesKey === imagesKey && (await imagesStillThere(registry.host, spec, prev, auth?.authFile))) {
    base = prev.base.versions;
    builderDigest = prev.builder.digest;
    reused.push(`images (${base.length} base version${base.length === 1 ? '' : 's'}, builder)`);
    log('images: registry already holds every expected tag at the recorded digest');
  } else {
    const rootfsImage = await step('root filesystem image…', () => ensureRootfsImage({ containersConf, log }));
    base = await buildAndPushBase({
      registry: registry.host,
      repository: spec.base.repository,
      versions: spec.base.versions,
      filler: spec.base.filler,
      compression: spec.base.compression,
      rootfsImage,
      containersConf,
      authFile: auth?.authFile,
      log,
    });
    builderDigest = (
      await buildAndPushBuilder({
        registry: registry.host,
        repository: spec.builder.repository,
        toolchain,
        debianKernels,
        containersConf,
        authFile: auth?.authFile,
        log,
      })
    ).digest;
  }

  const reg = registry.host;
  const s = spec.stream;
  const stream = {
    name: s.name,
    candidate: `${reg}/${s.owner}/${s.name}-candidate`,
    stable: `${reg}/${s.owner}/${s.name}`,
    akmodsCandidate: `${reg}/${s.owner}/${s.name}-bluebuild-akmods-candidate`,
    akmodsStable: `${reg}/${s.owner}/${s.name}-bluebuild-akmods`,
  };
  const source = {
    releasesUrl: `${http.url}/repos/openzfs/zfs/releases`,
    metaUrl: `${http.url}/{tag}/META`,
    tarballUrl: `${http.url}/{tag}/zfs-{version}.tar.gz`,
  };
  const configFile = join(dir, 'config.yaml');
  const rawConfig = {
    // Task queues per world: two worlds on one Temporal server never serve each other's runs.
    temporal: {
      address: temporal.address,
      namespace: temporal.namespace,
      ...(temporal.uiUrl ? { webUrl: temporal.uiUrl } : {}),
      taskQueues: { control: `kinoite-zfs-${spec.name}-control`, build: `kinoite-zfs-${spec.name}-build` },
    },
    registries: { insecure: [reg, http.host], ...(auth ? { authFile: auth.authFile } : {}) },
    // Builds and the compiler cache are per machine (the tools cache's folder), shared by every world.
    worker: {
      workDir: join(dir, 'work'),
      containersConf,
      buildCacheDir: join(cacheRoot(), 'builds'),
      ccacheDir: join(cacheRoot(), 'ccache'),
    },
    streams: {
      [s.name]: {
        baseImage: `${reg}/${spec.base.repository}:latest`,
        builderImage: `${reg}/${spec.builder.repository}:latest`,
        // The world builder carries every kernel's build tree, so it needs no network.
        builderNetwork: 'none',
        zfs: {
          line: s.zfsLine,
          allowExperimental: s.allowExperimental,
          ...(s.recheckEvery ? { recheckEvery: s.recheckEvery } : {}),
          source,
        },
        images: {
          candidate: stream.candidate,
          stable: stream.stable,
          akmodsCandidate: stream.akmodsCandidate,
          akmodsStable: stream.akmodsStable,
        },
        // Real kernels boot; a synthetic kernel's placeholder vmlinuz cannot.
        smoke: {
          boot: s.boot ?? (allDebian ? 'required' : 'off'),
          ...(s.bootTimeout ? { bootTimeout: s.bootTimeout } : {}),
        },
        recipe: { git: recipe.git, ref: recipe.ref, path: recipe.path },
        promotion: {
          policy: s.promotion,
          approvers: s.approvers,
          ...(s.approvalTimeout ? { timeout: s.approvalTimeout } : {}),
        },
        ...(s.notify ? { notify: s.notify } : {}),
        ...(s.retry ? { retry: s.retry } : {}),
        // No Rekor is reachable from the test world: sign offline, verify with --insecure-ignore-tlog.
        signing: { ...signing, tlog: false },
      },
    },
  };
  parseConfig(rawConfig, configFile);
  await writeAtomic(
    configFile,
    `# Written by \`kinoite-zfs world up --spec ${relative(process.cwd(), specFile) || specFile} --dir ${dir}\`.\n# Every service here runs on loopback; see world.json for digests and paths.\n${toYaml(rawConfig)}`,
  );

  const info: WorldInfo = {
    name: spec.name,
    dir,
    specFile,
    specHash: sha(text),
    configFile,
    containersConf,
    registry: {
      host: reg,
      logFile: registry.logFile,
      ...(auth
        ? {
            auth: {
              user: auth.user,
              authFile: auth.authFile,
              passwordFile: auth.passwordFile,
              tokenLogFile: auth.tokenLogFile,
            },
          }
        : {}),
    },
    releaseSource: { url: http.url, host: http.host, root: releaseRoot, ...source, releases },
    temporal,
    base: { repository: spec.base.repository, reference: `${reg}/${spec.base.repository}:latest`, versions: base },
    builder: {
      repository: spec.builder.repository,
      reference: `${reg}/${spec.builder.repository}:latest`,
      digest: builderDigest,
    },
    recipe,
    signing,
    stream,
    imagesKey,
    updatedAt: new Date().toISOString(),
  };
  await writeRecord(join(dir, 'world.json'), info);
  const seconds = (Date.now() - t0) / 1000;
  if (reused.length) log(`reused: ${reused.join('; ')}`);
  return { info, reused, seconds };
}

/** Whether every tag the spec implies still points at the digest recorded in world.json. */
async function imagesStillThere(
  host: string,
  spec: WorldSpec,
  prev: WorldInfo,
  authFile: string | undefined,
): Promise<boolean> {
  const registry = new RegistryClient({ insecureHosts: [host], authFile });
  const manifestDigest = (h: string, repository: string, reference: string) =>
    registry.resolveDigest(`${h}/${repository}:${reference}`);
  try {
    if (prev.base.versions.length !== spec.base.versions.length) return false;
    const last = prev.base.versions[prev.base.versions.length - 1]!;
    for (const [i, v] of prev.base.versions.entries()) {
      const own = baseTags(v.version, false).filter((t) => t.startsWith('latest-') || t.includes('-'));
      for (const tag of own) if ((await manifestDigest(host, spec.base.repository, tag)) !== v.digest) return false;
      if (
        i === prev.base.versions.length - 1 &&
        (await manifestDigest(host, spec.base.repository, 'latest')) !== last.digest
      )
        return false;
    }
    return (await manifestDigest(host, spec.builder.repository, 'latest')) === prev.builder.digest;
  } catch {
    return false;
  }
}

/**
 * For `registry.auth: token`: the registry user (named after the stream's owner, as a ghcr.io user
 * owns a namespace) with a random password kept in a 0600 file, the auth file holding its
 * credentials (what `podman login` writes), and the token issuer that admits it; the base and
 * builder repositories are public.
 */
async function ensureRegistryAuth(
  dir: string,
  spec: WorldSpec,
  reused: string[],
): Promise<{
  token: RegistryTokenAuth;
  user: string;
  authFile: string;
  passwordFile: string;
  tokenLogFile: string;
}> {
  const secretsDir = join(dir, 'secrets');
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  await chmod(secretsDir, 0o700);
  const user = spec.stream.owner;
  const passwordFile = join(secretsDir, 'registry.password');
  if (!existsSync(passwordFile)) await writeFile(passwordFile, randomBytes(24).toString('base64url'), { mode: 0o600 });
  const password = await readFile(passwordFile, 'utf8');
  const authFile = join(secretsDir, 'auth.json');
  const issuer = await ensureTokenIssuer({
    dir,
    users: { [user]: passwordHash(password) },
    publicRepositories: [spec.base.repository, spec.builder.repository],
  });
  if (issuer.reused) reused.push('registry token issuer');
  return { token: issuer.auth, user, authFile, passwordFile, tokenLogFile: issuer.logFile };
}

/** Writes the world's auth file for `host` (0600), as `podman login` would. */
async function writeAuthFile(file: string, host: string, user: string, passwordFile: string): Promise<void> {
  const password = await readFile(passwordFile, 'utf8');
  const auth = Buffer.from(`${user}:${password}`).toString('base64');
  await writeAtomic(file, `${JSON.stringify({ auths: { [host]: { auth } } }, null, 2)}\n`, 0o600);
}

/** Makes (once) the world's cosign key pair in `secretsDir` (0700) with a random password kept in a 0600 file. */
async function ensureKeys(secretsDir: string, reused: string[]): Promise<WorldInfo['signing']> {
  const keyFile = join(secretsDir, 'cosign.key');
  const publicKeyFile = join(secretsDir, 'cosign.pub');
  const passwordFile = join(secretsDir, 'cosign.password');
  await mkdir(secretsDir, { recursive: true, mode: 0o700 });
  await chmod(secretsDir, 0o700);
  if (existsSync(keyFile) && existsSync(publicKeyFile) && existsSync(passwordFile)) {
    reused.push('cosign key pair');
    return { keyFile, publicKeyFile, passwordFile };
  }
  await rm(keyFile, { force: true });
  await rm(publicKeyFile, { force: true });
  const password = randomBytes(24).toString('base64url');
  await writeFile(passwordFile, password, { mode: 0o600 });
  // The password goes only into this child's environment, never onto a command line.
  const r = await execa(cosignBin(), ['generate-key-pair', '--output-key-prefix', join(secretsDir, 'cosign')], {
    env: { COSIGN_PASSWORD: password },
    reject: false,
    all: true,
    stdin: 'ignore',
  });
  if (r.exitCode !== 0) throw new Error(`cosign generate-key-pair failed in ${secretsDir}: ${String(r.all).trim()}`);
  await chmod(keyFile, 0o600);
  return { keyFile, publicKeyFile, passwordFile };
}

/** Splits `2.5.0-rc1` into the META version `2.5.0` and release `rc1`. */
function metaParts(version: string): { base: string; release?: string } {
  const i = version.indexOf('-');
  return i < 0 ? { base: version } : { base: version.slice(0, i), release: version.slice(i + 1) };
}

/**
 * Writes the release source tree: a GitHub-API-shaped release list (newest first: the spec lists
 * releases oldest first), each release's META and source tarball. Real releases (`source: openzfs`)
 * are served from a folder of real tarballs; without one they fall back to synthetic releases of the
 * same version, and the log says how to point the world at real ones.
 */
async function writeReleaseSource(input: {
  root: string;
  url: string;
  releases: ZfsRelease[];
  openzfsDir: string;
  reused: string[];
  log: (line: string) => void;
}): Promise<WorldInfo['releaseSource']['releases']> {
  const out: WorldInfo['releaseSource']['releases'] = [];
  const listed: { tag: string; prerelease: boolean; draft: boolean; publishedAt?: string }[] = [];
  let fresh = 0;
  for (const spec of input.releases) {
    let r: SyntheticRelease;
    let real: RealRelease | undefined;
    if (spec.source === 'openzfs') {
      const found = await readRealRelease(input.openzfsDir, spec.tag);
      if ('missing' in found) {
        input.log(
          `WARNING: real release ${spec.tag} unavailable, serving a synthetic ${spec.tag} instead: ${found.missing}`,
        );
        r = {
          source: 'synthetic',
          version: spec.tag.slice(4),
          linuxMin: '4.18',
          linuxMax: '7.2',
          prerelease: false,
          draft: false,
        };
      } else {
        real = found;
        r = {
          source: 'synthetic',
          version: found.version,
          linuxMin: found.linuxMin,
          linuxMax: found.linuxMax,
          prerelease: found.prerelease,
          draft: false,
        };
      }
    } else {
      r = spec;
    }
    const tag = `zfs-${r.version}`;
    const parts = metaParts(r.version);
    const values = { version: parts.base, linuxMin: r.linuxMin, linuxMax: r.linuxMax };
    let meta = real?.meta ?? renderMeta(values);
    if (!real && parts.release) meta = meta.replace(/^Release:(\s*).*$/m, `Release:$1${parts.release}`);
    const tagDir = join(input.root, tag);
    const metaFile = join(tagDir, 'META');
    const tarballFile = join(tagDir, `zfs-${r.version}.tar.gz`);
    const stamp = join(tagDir, '.inputs');
    const inputs = JSON.stringify(real ? { real: real.tarball, size: (await stat(real.tarball)).size } : values);
    if (
      !existsSync(tarballFile) ||
      (await readFile(stamp, 'utf8').catch(() => '')) !== inputs ||
      (await readFile(metaFile, 'utf8').catch(() => '')) !== meta
    ) {
      await mkdir(tagDir, { recursive: true });
      await writeAtomic(metaFile, meta);
      if (real) {
        await copyFile(real.tarball, tarballFile);
        await chmod(tarballFile, 0o644); // shared/ is read-only; the copy is the world's own
      } else await makeZfsSourceTarball({ ...values, outFile: tarballFile });
      await writeFile(stamp, inputs);
      fresh++;
    }
    listed.push({ tag, prerelease: r.prerelease, draft: r.draft, publishedAt: real?.publishedAt });
    out.push({
      version: r.version,
      tag,
      prerelease: r.prerelease,
      linuxMin: r.linuxMin,
      linuxMax: r.linuxMax,
      metaUrl: `${input.url}/${tag}/META`,
      tarballUrl: `${input.url}/${tag}/zfs-${r.version}.tar.gz`,
      tarballFile,
      ...(real ? { real: true } : {}),
    });
  }
  const list = [...listed].reverse().map((r, i) => ({
    tag_name: r.tag,
    name: r.tag,
    prerelease: r.prerelease,
    draft: r.draft,
    // Real releases keep their dates; synthetic ones get strictly ordered dates so "newest" is unambiguous.
    published_at: r.publishedAt ?? new Date(Date.UTC(2026, 0, 1) + (listed.length - i) * 86_400_000).toISOString(),
    tarball_url: `${input.url}/${r.tag}/${r.tag}.tar.gz`,
  }));
  await writeAtomic(join(input.root, 'repos', 'openzfs', 'zfs', 'releases'), `${JSON.stringify(list, null, 2)}\n`);
  if (fresh === 0) input.reused.push(`${input.releases.length} ZFS release${input.releases.length === 1 ? '' : 's'}`);
  return out;
}

async function git(repo: string, args: string[]): Promise<string> {
  const r = await execa('git', ['-C', repo, '-c', 'commit.gpgsign=false', '-c', 'core.hooksPath=/dev/null', ...args], {
    env: GIT_ENV,
    reject: false,
    all: true,
  });
  if (r.exitCode !== 0) throw new Error(`git ${args.join(' ')} failed in ${repo}: ${String(r.all).trim()}`);
  return String(r.stdout).trim();
}

/**
 * The recipe repository: `<repo>/recipes` of this checkout committed as `recipes/` (with the
 * world's public key as `recipes/os/cosign.pub`), then the spec's `recipe.append` as a second
 * commit. Reused as is when nothing it is made from changed.
 */
async function ensureRecipeRepo(input: {
  repo: string;
  spec: WorldSpec;
  publicKeyFile: string;
  prev?: WorldInfo['recipe'];
  reused: string[];
}): Promise<WorldInfo['recipe']> {
  const source = join(REPO_ROOT, 'recipes');
  if (!existsSync(source))
    throw new Error(
      `${source} does not exist: the world seeds its recipe repository from the checkout's recipes/ folder`,
    );
  const publicKey = await readFile(input.publicKeyFile, 'utf8');
  const append = input.spec.recipe.append ?? {};
  const inputsHash = sha(JSON.stringify({ recipes: await treeHash(source), publicKey, append }));
  const isRepo = existsSync(join(input.repo, '.git'));
  if (isRepo && input.prev && input.prev.inputsHash === inputsHash) {
    const head = await git(input.repo, ['rev-parse', 'HEAD']).catch(() => '');
    if (head === input.prev.head) {
      input.reused.push(`recipe repository at ${head.slice(0, 12)}`);
      return input.prev;
    }
  }
  if (!isRepo) {
    await mkdir(input.repo, { recursive: true });
    await git(input.repo, ['init', '--quiet', '-b', 'main']);
  } else {
    await git(input.repo, ['checkout', '--quiet', '-f', 'main']);
  }
  const target = join(input.repo, 'recipes');
  await rm(target, { recursive: true, force: true });
  await cp(source, target, { recursive: true });
  await mkdir(join(target, 'os'), { recursive: true });
  await writeFile(join(target, 'os', 'cosign.pub'), publicKey);
  await git(input.repo, ['add', '-A']);
  const commitIfChanged = async (message: string): Promise<string> => {
    const diff = await execa('git', ['-C', input.repo, 'diff', '--cached', '--quiet'], { reject: false });
    if (diff.exitCode !== 0) await git(input.repo, ['commit', '--quiet', '-m', message]);
    return git(input.repo, ['rev-parse', 'HEAD']);
  };
  const recipes = await commitIfChanged(`kinoite-zfs world: recipes from this checkout (${inputsHash.slice(0, 12)})`);
  let appendCommit: string | undefined;
  const files = Object.keys(append);
  if (files.length) {
    for (const [path, text] of Object.entries(append)) {
      const file = join(target, path);
      await mkdir(resolve(file, '..'), { recursive: true });
      await appendFile(file, text);
    }
    await git(input.repo, ['add', '-A']);
    appendCommit = await commitIfChanged(`kinoite-zfs world: append to ${files.join(', ')}`);
  }
  const head = await git(input.repo, ['rev-parse', 'HEAD']);
  return {
    git: input.repo,
    ref: 'main',
    path: 'recipes',
    head,
    commits: { recipes, ...(appendCommit ? { append: appendCommit } : {}) },
    inputsHash,
  };
}

/** Stops the world's registry and release source (Temporal keeps running; see servicesDown). Data stays in `dir`. */
export async function worldDown(input: {
  dir: string;
}): Promise<{ registry: boolean; releaseSource: boolean; worker: boolean }> {
  const dir = resolve(input.dir);
  const worker = await stopWorldWorker(dir);
  await stopTokenIssuer({ dir });
  return { registry: await stopRegistry({ dir }), releaseSource: await stopHttpServer({ dir }), worker };
}

/** Stops the world's services and the project's Temporal dev server. */
export async function servicesDown(
  input: { dir?: string; stateDir?: string } = {},
): Promise<{ registry: boolean; releaseSource: boolean; worker: boolean; temporal: boolean }> {
  const world = input.dir
    ? await worldDown({ dir: input.dir })
    : { registry: false, releaseSource: false, worker: false };
  return { ...world, temporal: await stopTemporal({ stateDir: input.stateDir ?? defaultStateDir() }) };
}

/** Reads `dir/world.json` of a world brought up earlier. */
export async function readWorldInfo(dir: string): Promise<WorldInfo> {
  const info = await readRecord<WorldInfo>(join(resolve(dir), 'world.json'));
  if (!info)
    throw new Error(
      `${join(resolve(dir), 'world.json')} not found: run \`kinoite-zfs world up --spec FILE --dir ${dir}\` first`,
    );
  return info;
}
