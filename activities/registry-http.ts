/**
 * OCI registry client over the Registry HTTP API v2 (Node's global `fetch`, no dependencies).
 *
 * Why not skopeo: reading labels, resolving digests and merging per-kernel akmods images need only
 * manifests and small config blobs; the HTTP API does that in a handful of requests, and
 * cross-repository blob mounts let {@link RegistryClient.assembleImage} build an image without
 * downloading a single layer.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { FailureType, PermanentError } from '../core/errors.ts';
import { parseImageRef } from '../core/refs.ts';
import type { ImageRef } from '../core/refs.ts';
import { fetchWithTimeouts, HttpTimeoutError, type HttpTimeouts } from './http.ts';
import { readCredential, type RegistryCredential } from './registry-credentials.ts';

/** How this worker host may reach registries. */
export interface RegistryAccess {
  /** Registry hosts (`host[:port]`) allowed over plain http; every other host uses https. */
  insecureHosts: string[];
  /**
   * Path of a containers-auth.json / docker config.json on this host (`auths`, `credHelpers`,
   * `credsStore`: activities/registry-credentials.ts). Credentials read from it never appear in
   * errors, logs or return values.
   */
  authFile?: string;
  /** How long a registry may take to answer, and pause while sending a body (activities/http.ts). @default 60 s each */
  timeouts?: HttpTimeouts;
}

/** Media types this client understands, as the registry and the OCI spec spell them. */
export const MediaType = {
  OciManifest: 'application/vnd.oci.image.manifest.v1+json',
  OciIndex: 'application/vnd.oci.image.index.v1+json',
  OciConfig: 'application/vnd.oci.image.config.v1+json',
  OciLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  OciLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  DockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  DockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  DockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  DockerLayerTar: 'application/vnd.docker.image.rootfs.diff.tar',
} as const;

const MANIFEST_ACCEPT = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
].join(', ');

type RegistryRef = ImageRef;

/** One layer of an image manifest. */
export interface LayerDescriptor {
  /** `sha256:<hex>` digest of the (compressed) blob. */
  digest: string;
  /** Layer media type as the manifest states it. */
  mediaType: string;
  /** Blob size in bytes. */
  size: number;
}

/** An OCI/Docker content descriptor as manifests hold it; only the fields this client reads are typed. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os?: string; architecture?: string; variant?: string };
  [field: string]: unknown;
}

/** A parsed image manifest or index; only the fields this client reads are typed. */
export interface ParsedManifest {
  schemaVersion?: number;
  mediaType?: string;
  config?: Descriptor;
  layers?: Descriptor[];
  manifests?: Descriptor[];
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** A parsed image config blob; only the fields this client reads are typed. */
export interface ImageConfig {
  architecture?: string;
  os?: string;
  variant?: string;
  config?: { Labels?: Record<string, string> | null; [field: string]: unknown };
  rootfs?: { type?: string; diff_ids?: string[] };
  [field: string]: unknown;
}

/** A manifest as fetched: canonical digest, media type, exact bytes and the parsed JSON. */
export interface FetchedManifest {
  /** `sha256:<hex>` of `bytes`. */
  digest: string;
  /** Media type from the manifest body, else from Content-Type. */
  mediaType: string;
  /** The bytes as served (the digest is computed over them). */
  bytes: Buffer;
  /** Parsed JSON of `bytes`. */
  manifest: ParsedManifest;
}

/** A single-platform image: manifest, config, labels and layers. */
export interface ImageInfo {
  /** Digest of the single-platform image manifest (for an index, the linux/amd64 entry's digest). */
  digest: string;
  /** Digest of the index the image was chosen from, when the reference named an index. */
  indexDigest?: string;
  /** Media type of the image manifest. */
  mediaType: string;
  /** Parsed image manifest. */
  manifest: ParsedManifest & { config: Descriptor; layers: Descriptor[] };
  /** Parsed image config blob. */
  config: ImageConfig;
  /** `config.config.Labels`, or `{}` when the image has none. */
  labels: Record<string, string>;
  /** Layers in manifest order (bottom first). */
  layers: LayerDescriptor[];
}

/** Input of {@link RegistryClient.mountBlob}: full repository names (`host/path`), no tag. */
export interface MountBlobInput {
  /** Repository that has the blob. */
  from: string;
  /** Repository that should get it. */
  to: string;
  /** `sha256:<hex>` of the blob. */
  digest: string;
}

/** Input of {@link RegistryClient.assembleImage}. */
export interface AssembleImageInput {
  /** Full target repository name (`host/path`), no tag. */
  repo: string;
  /** Source images by manifest digest; their layers are concatenated in this order. */
  layersFrom: { repo: string; digest: string }[];
  /** Labels of the new image (`config.Labels`); nothing is inherited from the sources. */
  labels: Record<string, string>;
  /** Tag to point at the new image, besides pushing it by digest. */
  tag?: string;
}

/** Request counters of one client; benchmarks report them. */
export interface RegistryStats {
  /** HTTP requests sent (token requests and auth retries included). */
  requests: number;
  /** Bytes of blob bodies read from registries (configs and layers). */
  blobBytesRead: number;
  /** Bytes of blob bodies sent to registries. */
  blobBytesWritten: number;
  /** Blobs made available through a cross-repository mount (no bytes moved). */
  blobsMounted: number;
  /** Blobs copied by streaming them through this process. */
  blobsCopied: number;
}

/** Fixed `created` time of assembled images, so the same inputs always give the same digest. */
export const ASSEMBLED_CREATED = '1970-01-01T00:00:00Z';

type Action = 'pull' | 'push';

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

interface CachedToken {
  token: string;
  /** ms since epoch; undefined = no expiry given. */
  expiresAt?: number;
}

interface RequestOptions {
  method?: string;
  headers?: Record<string, string>;
  /** Buffer bodies can be re-sent after an auth challenge; streams cannot. */
  body?: Buffer | ReadableStream<Uint8Array>;
  signal?: AbortSignal;
  /** Statuses the caller handles itself (no error thrown). */
  okStatuses?: number[];
  /** What the request was for, for error messages. */
  what: string;
  /** Source repository of a cross-repository mount (its pull scope is needed too). */
  mountFrom?: string;
}

/**
 * Client for one worker host's view of OCI registries (Registry HTTP API v2).
 *
 * Not bound to one registry: every method takes full names (`host/path[:tag|@digest]`).
 * 404 → PermanentError ImageNotFound, 401/403 → AuthDenied, other 4xx → InvalidInput;
 * network faults, 429 and 5xx → plain `Error` (Temporal retries those).
 */
export class RegistryClient {
  /** Counters of everything this client did; read them after a run. */
  readonly stats: RegistryStats = {
    requests: 0,
    blobBytesRead: 0,
    blobBytesWritten: 0,
    blobsMounted: 0,
    blobsCopied: 0,
  };

  readonly #access: RegistryAccess;
  /** Credentials per host, read on the first challenge from that host. */
  readonly #credentials = new Map<string, Promise<RegistryCredential | undefined>>();
  /** Bearer tokens per `host|scope`. */
  readonly #tokens = new Map<string, CachedToken>();
  /** Which token scope answered for `host|repo|action`, so later requests send it up front. */
  readonly #scopeFor = new Map<string, string>();
  /** Hosts that asked for Basic auth. */
  readonly #basicHosts = new Set<string>();

  /** Creates a client; the auth file is read (and its helper run) lazily, on a host's first auth challenge. */
  constructor(access: RegistryAccess) {
    this.#access = { insecureHosts: [...access.insecureHosts], authFile: access.authFile, timeouts: access.timeouts };
  }

  /**
   * Digest of the manifest a reference points at (`Docker-Content-Digest`, else sha256 of the
   * bytes); undefined when the registry says the manifest or repository is unknown (404).
   */
  async resolveDigest(ref: string): Promise<string | undefined> {
    const r = parseRef(ref);
    const reference = r.digest ?? r.tag ?? 'latest';
    const res = await this.#request(r.registry, r.repository, 'pull', `/manifests/${reference}`, {
      method: 'HEAD',
      headers: { Accept: MANIFEST_ACCEPT },
      okStatuses: [404],
      what: `resolve the digest of ${ref}`,
    });
    if (res.status === 404) return undefined;
    const header = res.headers.get('docker-content-digest');
    if (header && header.startsWith('sha256:')) return header;
    // Some registries omit the header on HEAD: fall back to hashing the body.
    try {
      return (await this.getManifest(ref)).digest;
    } catch (err) {
      if (err instanceof PermanentError && err.type === FailureType.ImageNotFound) return undefined;
      throw err;
    }
  }

  /**
   * The manifest a reference points at, exactly as served (OCI or Docker schema 2, image or
   * index); when the reference has a digest, the bytes are checked against it.
   */
  async getManifest(ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const r = parseRef(ref);
    return this.#getManifest(r, r.digest ?? r.tag ?? 'latest', ref, signal);
  }

  /**
   * The single-platform image behind a reference: manifest, config, labels and layers.
   * For an index (manifest list) the linux/amd64 entry is chosen.
   */
  async getImage(ref: string, signal?: AbortSignal): Promise<ImageInfo> {
    const r = parseRef(ref);
    let fetched = await this.#getManifest(r, r.digest ?? r.tag ?? 'latest', ref, signal);
    let indexDigest: string | undefined;
    if (isIndex(fetched)) {
      indexDigest = fetched.digest;
      const entry = pickLinuxAmd64(fetched.manifest);
      if (!entry) {
        throw new PermanentError(
          FailureType.ImageNotFound,
          `Image index ${ref} (${fetched.digest}) has no linux/amd64 manifest; publish an amd64 image or pick another reference`,
        );
      }
      fetched = await this.#getManifest(r, entry.digest, `${r.name}@${entry.digest}`, signal);
      if (isIndex(fetched)) {
        throw new PermanentError(
          FailureType.InvalidInput,
          `Nested image index in ${ref} is not supported; point at an image manifest`,
        );
      }
    }
    const m = fetched.manifest;
    if (!m.config?.digest || !Array.isArray(m.layers)) {
      throw new PermanentError(
        FailureType.InvalidInput,
        `Manifest ${fetched.digest} of ${ref} (${fetched.mediaType}) is not an image manifest (no config or layers); check the reference`,
      );
    }
    const configBytes = await this.#readSmallBlob(r, m.config.digest, signal);
    let config: ImageConfig;
    try {
      config = JSON.parse(configBytes.toString('utf8'));
    } catch {
      throw new PermanentError(
        FailureType.InvalidInput,
        `Config blob ${m.config.digest} of ${ref} is not JSON; the image is corrupt`,
      );
    }
    const labels: Record<string, string> = { ...(config?.config?.Labels ?? {}) };
    const layers: LayerDescriptor[] = m.layers.map((l) => ({
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
    }));
    const manifest = { ...m, config: m.config, layers: m.layers };
    return { digest: fetched.digest, indexDigest, mediaType: fetched.mediaType, manifest, config, labels, layers };
  }

  /**
   * A blob as a stream (Node `Readable`); the bytes are counted in `stats.blobBytesRead` and the
   * stream errors at its end if they do not hash to `digest`.
   */
  async openBlob(repoName: string, digest: string, signal?: AbortSignal): Promise<Readable> {
    const r = parseRepo(repoName);
    checkDigest(digest);
    const res = await this.#request(r.registry, r.repository, 'pull', `/blobs/${digest}`, {
      signal,
      what: `read blob ${digest} of ${repoName}`,
    });
    if (!res.body) throw new Error(`Registry sent no body for blob ${digest} of ${repoName}; retry`);
    const hash = createHash('sha256');
    const stats = this.stats;
    const expected = digest.slice('sha256:'.length);
    const verify = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        stats.blobBytesRead += chunk.byteLength;
        hash.update(chunk);
        controller.enqueue(chunk);
      },
      flush(controller) {
        const actual = hash.digest('hex');
        if (actual !== expected) {
          controller.error(
            new Error(`Blob ${digest} of ${repoName} hashed to sha256:${actual}; the transfer was corrupted, retry`),
          );
        }
      },
    });
    return Readable.fromWeb(res.body.pipeThrough(verify) as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  /** Whether `repoName` (`host/path`) has the blob `digest` (HEAD; 404 → false). */
  async blobExists(repoName: string, digest: string): Promise<boolean> {
    const r = parseRepo(repoName);
    checkDigest(digest);
    const res = await this.#request(r.registry, r.repository, 'pull', `/blobs/${digest}`, {
      method: 'HEAD',
      okStatuses: [404],
      what: `check blob ${digest} in ${repoName}`,
    });
    return res.status !== 404;
  }

  /** Pushes manifest bytes under a tag or digest; returns the manifest's digest. */
  async putManifest(repoName: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
    const r = parseRepo(repoName);
    const digest = sha256(bytes);
    if (reference.includes(':') && reference !== digest) {
      throw new PermanentError(
        FailureType.InvalidInput,
        `Manifest bytes hash to ${digest}, not to the reference ${reference}; push by tag or by the right digest`,
      );
    }
    const res = await this.#request(r.registry, r.repository, 'push', `/manifests/${reference}`, {
      method: 'PUT',
      headers: { 'Content-Type': mediaType },
      body: bytes,
      what: `push manifest ${digest} to ${repoName}:${reference}`,
    });
    await res.arrayBuffer();
    const served = res.headers.get('docker-content-digest');
    if (served && served.startsWith('sha256:') && served !== digest) {
      throw new Error(
        `Registry stored manifest for ${repoName}:${reference} as ${served}, expected ${digest}; check the registry`,
      );
    }
    return digest;
  }

  /**
   * Makes blob `digest` of `from` available in `to`. Returns true when the registry mounted it
   * (201, no bytes moved); false when it had to be copied: the registry answered 202 (that upload
   * is cancelled) or the repositories are on different registries, so the blob is streamed from
   * the source and uploaded.
   */
  async mountBlob(input: MountBlobInput): Promise<boolean> {
    const from = parseRepo(input.from);
    const to = parseRepo(input.to);
    checkDigest(input.digest);
    if (from.registry === to.registry) {
      const query = `?mount=${encodeURIComponent(input.digest)}&from=${encodeURIComponent(from.repository)}`;
      const res = await this.#request(to.registry, to.repository, 'push', `/blobs/uploads/${query}`, {
        method: 'POST',
        headers: { 'Content-Length': '0' },
        body: Buffer.alloc(0),
        okStatuses: [202],
        what: `mount blob ${input.digest} from ${input.from} into ${input.to}`,
        mountFrom: from.repository,
      });
      await res.arrayBuffer();
      if (res.status === 201) {
        this.stats.blobsMounted += 1;
        return true;
      }
      // 202: the registry opened an ordinary upload instead; cancel it so it does not linger.
      const location = res.headers.get('location');
      if (location) {
        const del = await this.#request(
          to.registry,
          to.repository,
          'push',
          this.#resolveLocation(to.registry, location),
          {
            method: 'DELETE',
            okStatuses: [404],
            what: `cancel the upload opened for ${input.to}`,
          },
        );
        await del.arrayBuffer();
      }
    }
    await this.#copyBlob(input);
    return false;
  }

  /** Uploads a small blob (config) in one POST + PUT; returns its digest. */
  async uploadBlob(repoName: string, bytes: Buffer): Promise<string> {
    const r = parseRepo(repoName);
    const digest = sha256(bytes);
    const location = await this.#startUpload(r, repoName);
    const res = await this.#request(r.registry, r.repository, 'push', withQuery(location, 'digest', digest), {
      method: 'PUT',
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': String(bytes.length) },
      body: bytes,
      what: `upload blob ${digest} to ${repoName}`,
    });
    await res.arrayBuffer();
    this.stats.blobBytesWritten += bytes.length;
    return digest;
  }

  /**
   * Builds a new single-platform OCI image in `repo` from the layers of the given images
   * (concatenated in order, duplicates dropped keeping the first), with a fresh config
   * (architecture/os of the first source, matching diff_ids, `Labels` = `labels`, fixed `created`).
   * Missing blobs are mounted (or copied across registries); the manifest is pushed by digest and,
   * when `tag` is given, under the tag. The same inputs always give the same digest.
   */
  async assembleImage(input: AssembleImageInput): Promise<{ digest: string }> {
    if (input.layersFrom.length === 0) {
      throw new PermanentError(
        FailureType.InvalidInput,
        `assembleImage for ${input.repo} got no source images; pass at least one`,
      );
    }
    const target = parseRepo(input.repo);
    const layers: { desc: Descriptor; diffId: string; from: string }[] = [];
    const seen = new Set<string>();
    let platform: { architecture: string; os: string; variant?: string } | undefined;
    const read = new Map<string, ImageInfo>();
    for (const src of input.layersFrom) {
      checkDigest(src.digest);
      const key = `${src.repo}@${src.digest}`;
      // A source listed twice adds no layers; reading it once is enough.
      if (read.has(key)) continue;
      const image = await this.getImage(key);
      read.set(key, image);
      const diffIds: unknown = image.config?.rootfs?.diff_ids;
      if (!Array.isArray(diffIds) || diffIds.length !== image.layers.length) {
        throw new PermanentError(
          FailureType.InvalidInput,
          `Image ${src.repo}@${src.digest} has ${image.layers.length} layers but ${Array.isArray(diffIds) ? diffIds.length : 'no'} diff_ids; rebuild it`,
        );
      }
      platform ??= {
        architecture: image.config.architecture ?? 'amd64',
        os: image.config.os ?? 'linux',
        ...(image.config.variant ? { variant: image.config.variant } : {}),
      };
      image.manifest.layers.forEach((l, i) => {
        if (seen.has(l.digest)) return;
        seen.add(l.digest);
        layers.push({ desc: ociLayerDescriptor(l), diffId: String(diffIds[i]), from: src.repo });
      });
    }
    const labels = Object.fromEntries(Object.entries(input.labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const config = {
      created: ASSEMBLED_CREATED,
      architecture: platform!.architecture,
      os: platform!.os,
      ...(platform!.variant ? { variant: platform!.variant } : {}),
      config: { Labels: labels },
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
      history: layers.map((l) => ({
        created: ASSEMBLED_CREATED,
        created_by: `kinoite-zfs assemble: layer ${l.desc.digest}`,
      })),
    };
    const configBytes = Buffer.from(JSON.stringify(config));
    const configDigest = sha256(configBytes);

    for (const l of layers) {
      // Within one registry a mount is one request whether or not the blob is there already;
      // across registries a HEAD first avoids copying a blob the target has.
      const sameRegistry = parseRepo(l.from).registry === target.registry;
      if (!sameRegistry && (await this.blobExists(input.repo, l.desc.digest))) continue;
      await this.mountBlob({ from: l.from, to: input.repo, digest: l.desc.digest });
    }
    if (!(await this.blobExists(input.repo, configDigest))) await this.uploadBlob(input.repo, configBytes);

    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { mediaType: MediaType.OciConfig, digest: configDigest, size: configBytes.length },
      layers: layers.map((l) => l.desc),
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    const digest = await this.putManifest(target.name, sha256(bytes), bytes, MediaType.OciManifest);
    if (input.tag !== undefined) await this.putManifest(target.name, input.tag, bytes, MediaType.OciManifest);
    return { digest };
  }

  /** All tags of a repository (follows `Link` pagination); `[]` when the repository is unknown. */
  async listTags(repoName: string): Promise<string[]> {
    const r = parseRepo(repoName);
    const tags: string[] = [];
    let path = '/tags/list';
    for (let page = 0; page < 1000; page++) {
      const res = await this.#request(r.registry, r.repository, 'pull', path, {
        okStatuses: [404],
        what: `list tags of ${repoName}`,
      });
      if (res.status === 404) {
        await res.arrayBuffer();
        return [];
      }
      const body = (await res.json()) as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
      const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(res.headers.get('link') ?? '');
      if (!next) break;
      path = this.#resolveLocation(r.registry, next[1]!);
    }
    return tags;
  }

  // ---------------------------------------------------------------- internals

  async #getManifest(r: RegistryRef, reference: string, ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const res = await this.#request(r.registry, r.repository, 'pull', `/manifests/${reference}`, {
      headers: { Accept: MANIFEST_ACCEPT },
      signal,
      what: `read the manifest of ${ref}`,
    });
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = sha256(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new Error(`Manifest of ${ref} hashed to ${digest}; the registry served the wrong bytes, retry`);
    }
    let manifest: ParsedManifest;
    try {
      manifest = JSON.parse(bytes.toString('utf8'));
    } catch {
      throw new PermanentError(FailureType.InvalidInput, `Manifest of ${ref} is not JSON; check the reference`);
    }
    const mediaType: string = manifest?.mediaType ?? (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    return { digest, mediaType, bytes, manifest };
  }

  async #readSmallBlob(r: RegistryRef, digest: string, signal?: AbortSignal): Promise<Buffer> {
    const stream = await this.openBlob(r.name, digest, signal);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  }

  async #startUpload(r: RegistryRef, repoName: string): Promise<string> {
    const res = await this.#request(r.registry, r.repository, 'push', '/blobs/uploads/', {
      method: 'POST',
      headers: { 'Content-Length': '0' },
      body: Buffer.alloc(0),
      what: `start a blob upload to ${repoName}`,
    });
    await res.arrayBuffer();
    const location = res.headers.get('location');
    if (!location) throw new Error(`Registry gave no upload location for ${repoName}; retry`);
    return this.#resolveLocation(r.registry, location);
  }

  /** Streams a blob from `from` into `to` (PATCH the whole stream, then PUT ?digest=). */
  async #copyBlob(input: MountBlobInput): Promise<void> {
    const to = parseRepo(input.to);
    const location = await this.#startUpload(to, input.to);
    const source = await this.openBlob(input.from, input.digest);
    const stats = this.stats;
    let sent = 0;
    const body = (Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>).pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          sent += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    );
    const patch = await this.#request(to.registry, to.repository, 'push', location, {
      method: 'PATCH',
      headers: { 'Content-Type': 'application/octet-stream' },
      body,
      what: `upload blob ${input.digest} to ${input.to}`,
    });
    await patch.arrayBuffer();
    const next = patch.headers.get('location');
    const put = await this.#request(
      to.registry,
      to.repository,
      'push',
      withQuery(next ? this.#resolveLocation(to.registry, next) : location, 'digest', input.digest),
      {
        method: 'PUT',
        headers: { 'Content-Length': '0' },
        body: Buffer.alloc(0),
        what: `finish the upload of blob ${input.digest} to ${input.to}`,
      },
    );
    await put.arrayBuffer();
    stats.blobBytesWritten += sent;
    stats.blobsCopied += 1;
  }

  /** Turns a `Location` header into a path+query relative to `/v2/<repo>` or an absolute URL. */
  #resolveLocation(host: string, location: string): string {
    return new URL(location, `${this.#scheme(host)}://${host}/`).toString();
  }

  #scheme(host: string): 'http' | 'https' {
    return this.#access.insecureHosts.includes(host) ? 'http' : 'https';
  }

  #url(host: string, repository: string, pathOrUrl: string): string {
    if (/^https?:\/\//.test(pathOrUrl)) return pathOrUrl;
    return `${this.#scheme(host)}://${apiHost(host)}/v2/${repository}${pathOrUrl}`;
  }

  /**
   * One registry request with auth: sends cached credentials up front, answers a 401 challenge
   * once (Basic from the auth file, or a Bearer token for the challenge's scope), maps statuses to
   * errors.
   */
  async #request(
    host: string,
    repository: string,
    action: Action,
    pathOrUrl: string,
    opts: RequestOptions,
  ): Promise<Response> {
    const url = this.#url(host, repository, pathOrUrl);
    const method = opts.method ?? 'GET';
    const scopeKey = `${host}|${repository}|${action}|${opts.mountFrom ?? ''}`;
    let auth = await this.#cachedAuthorization(host, scopeKey);
    let res = await this.#send(url, method, opts, auth);
    if (res.status === 401) {
      const challenge = parseChallenge(res.headers.get('www-authenticate') ?? '');
      await res.arrayBuffer().catch(() => undefined);
      const canResend = !(opts.body instanceof ReadableStream);
      if (challenge && canResend) {
        auth = await this.#answerChallenge(host, scopeKey, challenge, repository, action, opts.mountFrom);
        if (auth !== undefined) res = await this.#send(url, method, opts, auth);
      }
    }
    const handled = opts.okStatuses ?? [];
    if (res.ok || handled.includes(res.status)) return res;
    throw await statusError(res, method, url, opts.what, host, this.#fixCredentials(host));
  }

  async #send(url: string, method: string, opts: RequestOptions, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { ...(opts.headers ?? {}) };
    if (authorization) headers.Authorization = authorization;
    this.stats.requests += 1;
    try {
      const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: opts.signal, redirect: 'follow' };
      if (opts.body !== undefined) {
        init.body = opts.body as BodyInit;
        if (opts.body instanceof ReadableStream) init.duplex = 'half';
      }
      return await fetchWithTimeouts(url, init, { ...this.#access.timeouts, what: opts.what });
    } catch (err) {
      if (opts.signal?.aborted) throw opts.signal.reason ?? err;
      if (err instanceof HttpTimeoutError) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = cause?.code ?? cause?.message ?? (err as Error).message;
      if (/^ERR_SSL_WRONG_VERSION_NUMBER$|^EPROTO$/.test(cause?.code ?? '')) {
        // HTTPS to a registry that speaks plain HTTP: a configuration problem, not worth retrying.
        throw new PermanentError(
          FailureType.InvalidInput,
          `Registry ${new URL(url).host} does not speak HTTPS (${detail}) while trying to ${opts.what}. If it is a local plain-HTTP registry, list "${new URL(url).host}" in registries.insecure of this worker's config.`,
        );
      }
      throw new Error(
        `Registry request ${method} ${url} failed (${detail}) while trying to ${opts.what}; check that the registry is reachable (retrying)`,
      );
    }
  }

  async #cachedAuthorization(host: string, scopeKey: string): Promise<string | undefined> {
    const scope = this.#scopeFor.get(scopeKey);
    if (scope !== undefined) {
      const t = this.#tokens.get(`${host}|${scope}`);
      if (t && (t.expiresAt === undefined || t.expiresAt > Date.now() + 5_000)) return `Bearer ${t.token}`;
    }
    if (this.#basicHosts.has(host)) {
      const cred = await this.#credential(host);
      if (cred) return `Basic ${cred.basic}`;
    }
    return undefined;
  }

  async #answerChallenge(
    host: string,
    scopeKey: string,
    challenge: Challenge,
    repository: string,
    action: Action,
    mountFrom?: string,
  ): Promise<string | undefined> {
    const cred = await this.#credential(host);
    if (challenge.scheme === 'basic') {
      if (!cred) return undefined;
      this.#basicHosts.add(host);
      return `Basic ${cred.basic}`;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    const scopes = challenge.params.scope
      ? challenge.params.scope.split(' ').filter(Boolean)
      : [
          `repository:${repository}:${action === 'push' ? 'pull,push' : 'pull'}`,
          ...(mountFrom ? [`repository:${mountFrom}:pull`] : []),
        ];
    const scope = scopes.join(' ');
    const cached = this.#tokens.get(`${host}|${scope}`);
    if (cached && (cached.expiresAt === undefined || cached.expiresAt > Date.now() + 5_000)) {
      this.#scopeFor.set(scopeKey, scope);
      return `Bearer ${cached.token}`;
    }
    const tokenUrl = new URL(challenge.params.realm);
    if (challenge.params.service) tokenUrl.searchParams.set('service', challenge.params.service);
    for (const s of scopes) tokenUrl.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (cred) headers.Authorization = `Basic ${cred.basic}`;
    this.stats.requests += 1;
    let res: Response;
    try {
      res = await fetchWithTimeouts(
        tokenUrl,
        { headers },
        { ...this.#access.timeouts, what: `get a token for ${host}` },
      );
    } catch (err) {
      if (err instanceof HttpTimeoutError) throw err;
      const cause = (err as { cause?: { code?: string } }).cause;
      throw new Error(
        `Token request to ${tokenUrl.origin}${tokenUrl.pathname} for ${host} failed (${cause?.code ?? (err as Error).message}); retrying`,
      );
    }
    if (res.status === 401 || res.status === 403) {
      await res.arrayBuffer().catch(() => undefined);
      throw new PermanentError(
        FailureType.AuthDenied,
        `Registry ${host} refused ${cred ? `the credentials for it in ${describeSource(cred)}` : 'anonymous access'}: its token service ${tokenUrl.origin}${tokenUrl.pathname} answered ${res.status} (scope ${scope}). ${this.#fixCredentials(host)}`,
      );
    }
    if (!res.ok) {
      await res.arrayBuffer().catch(() => undefined);
      throw new Error(
        `Token service ${tokenUrl.origin}${tokenUrl.pathname} answered ${res.status} for ${host}; retrying`,
      );
    }
    const body = (await res.json()) as { token?: string; access_token?: string; expires_in?: number };
    const token = body.token ?? body.access_token;
    if (!token)
      throw new Error(`Token service ${tokenUrl.origin}${tokenUrl.pathname} returned no token for ${host}; retrying`);
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : 60;
    this.#tokens.set(`${host}|${scope}`, { token, expiresAt: Date.now() + expiresIn * 1000 });
    this.#scopeFor.set(scopeKey, scope);
    return `Bearer ${token}`;
  }

  /** Credentials for a host from the auth file (or its helper), or undefined (anonymous). */
  async #credential(host: string): Promise<RegistryCredential | undefined> {
    const file = this.#access.authFile;
    if (!file) return undefined;
    let pending = this.#credentials.get(host);
    if (!pending) {
      pending = readCredential(file, host);
      this.#credentials.set(host, pending);
      // A failed read (missing helper, unreadable file) is tried again by the next request.
      pending.catch(() => this.#credentials.delete(host));
    }
    return pending;
  }

  /** What to do when `host` refuses: names the auth file (or says there is none). */
  #fixCredentials(host: string): string {
    const file = this.#access.authFile;
    return file
      ? `Fix the entry for ${host} in the registry auth file ${file} (e.g. podman login --authfile ${file} ${host}).`
      : `No registry auth file is configured: log in (podman login ${host}) or set registries.authFile.`;
  }
}

function describeSource(cred: RegistryCredential): string {
  return cred.helper ? `${cred.file} (answered by ${cred.helper})` : cred.file;
}

// ------------------------------------------------------------------ helpers

async function statusError(
  res: Response,
  method: string,
  url: string,
  what: string,
  host: string,
  fixCredentials: string,
): Promise<Error> {
  let codes = '';
  try {
    const text = await res.text();
    const body = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
    codes = (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    // Not a registry error body; the status says enough.
  }
  const detail = `${method} ${url} answered ${res.status}${codes ? ` (${codes})` : ''}`;
  if (res.status === 404) {
    return new PermanentError(FailureType.ImageNotFound, `Could not ${what}: ${detail}; check the name, tag or digest`);
  }
  if (res.status === 401 || res.status === 403) {
    return new PermanentError(
      FailureType.AuthDenied,
      `Could not ${what}: ${detail}; registry ${host} denied access. ${fixCredentials}`,
    );
  }
  if (res.status === 429 || res.status >= 500) {
    return new Error(`Could not ${what}: ${detail}; the registry is busy or failing (retrying)`);
  }
  return new PermanentError(
    FailureType.InvalidInput,
    `Could not ${what}: ${detail}; the request was rejected as invalid`,
  );
}

function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/g;
  for (let p = re.exec(m[2]!); p; p = re.exec(m[2]!)) params[p[1]!.toLowerCase()] = p[2] ?? p[3] ?? '';
  return { scheme: m[1]!.toLowerCase(), params };
}

function isIndex(m: FetchedManifest): boolean {
  return (
    m.mediaType === MediaType.OciIndex ||
    m.mediaType === MediaType.DockerManifestList ||
    (Array.isArray(m.manifest?.manifests) && !m.manifest?.layers)
  );
}

function pickLinuxAmd64(index: ParsedManifest): { digest: string } | undefined {
  const entries: Descriptor[] = Array.isArray(index?.manifests) ? index.manifests : [];
  return entries.find((e) => e?.platform?.os === 'linux' && e?.platform?.architecture === 'amd64');
}

/** Docker layer media types name the same bytes as their OCI counterparts; an OCI manifest wants OCI names. */
function ociLayerDescriptor(l: Descriptor): Descriptor {
  const mediaType =
    l.mediaType === MediaType.DockerLayerGzip
      ? MediaType.OciLayerGzip
      : l.mediaType === MediaType.DockerLayerTar
        ? MediaType.OciLayerTar
        : l.mediaType;
  return { mediaType, digest: l.digest, size: l.size, ...(l.annotations ? { annotations: l.annotations } : {}) };
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function checkDigest(digest: string): void {
  if (!/^sha256:[a-f0-9]{64}$/.test(digest)) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `"${digest}" is not a sha256 digest (sha256:<64 hex>); pass a digest`,
    );
  }
}

function withQuery(url: string, key: string, value: string): string {
  const u = new URL(url);
  u.searchParams.set(key, value);
  return u.toString();
}

/** Docker Hub's API lives on another host than its name. */
function apiHost(host: string): string {
  return host === 'docker.io' ? 'registry-1.docker.io' : host;
}

function parseRef(ref: string): RegistryRef {
  return parseImageRef(ref);
}

function parseRepo(name: string): RegistryRef {
  const r = parseRef(name);
  if (r.tag !== undefined || r.digest !== undefined) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `Expected a repository name without tag or digest, got "${name}"`,
    );
  }
  return r;
}
