/**
 * The world spec: a small YAML file describing one hermetic test world (base image versions and
 * their kernels, the builder image, OpenZFS releases, recipe changes, the stream). Documented in
 * docs/world.md; `kinoite-zfs world up --spec FILE` reads it.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../core/config-parse.ts';
import { parseSize } from '../core/size.ts';

/** A string that YAML must not have turned into a number (4.10 would silently become 4.1). */
const quoted = (what: string, example: string) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v === 'string' && v.length > 0) return v;
    ctx.addIssue({
      code: 'custom',
      message:
        typeof v === 'number'
          ? `${what} must be a quoted string (YAML read ${v} as a number): write "${example}"`
          : `${what} is required, e.g. "${example}"`,
    });
    return z.NEVER;
  });

const KERNEL_RELEASE = /^[0-9][A-Za-z0-9._+~-]{0,127}$/;
const kernelRelease = z
  .string()
  .regex(KERNEL_RELEASE, { message: 'must be a kernel release such as 6.18.3-200.fc43.x86_64' });

/**
 * A synthetic kernel: a `/usr/lib/modules/<release>/` directory with plausible files and a real
 * `depmod` run, but no real kernel (no headers; the builder writes a fixture module for it).
 */
export const SyntheticKernel = z.strictObject({
  kind: z.literal('synthetic'),
  release: kernelRelease,
});

/**
 * A real Debian kernel: `linux-image-<release>` gives the base its real `/usr/lib/modules/<release>/`
 * tree and `vmlinuz`; `linux-headers-<release>` gives the builder the real build tree. Releases are
 * what Debian's archive holds, e.g. `6.1.0-47-cloud-amd64` or `6.12.117+deb12-cloud-amd64`.
 */
export const DebianKernel = z.strictObject({
  kind: z.literal('debian'),
  release: z.string().regex(/^\d+\.\d+\.\d+(-\d+|\+deb\d+)-[a-z0-9]+(-[a-z0-9]+)*$/, {
    message: 'must be a Debian kernel release such as 6.1.0-47-cloud-amd64 or 6.12.117+deb12-cloud-amd64',
  }),
});

/** Kernel kinds the world can make. */
export const KERNEL_KINDS = ['synthetic', 'debian'] as const;

const KIND_SCHEMAS = { synthetic: SyntheticKernel, debian: DebianKernel } as const;

/** One kernel of a base image version: a release string (synthetic) or an object with a `kind`. */
export const KernelSpec = z
  .union([
    kernelRelease.transform((release) => ({ kind: 'synthetic' as const, release })),
    z.looseObject({ kind: z.string() }),
  ])
  .transform((v, ctx) => {
    const schema = KIND_SCHEMAS[v.kind as keyof typeof KIND_SCHEMAS];
    if (schema) {
      const parsed = schema.safeParse(v);
      if (parsed.success) return parsed.data as z.infer<typeof SyntheticKernel> | z.infer<typeof DebianKernel>;
      for (const issue of parsed.error.issues)
        ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
      return z.NEVER;
    }
    ctx.addIssue({
      code: 'custom',
      path: ['kind'],
      message: `unknown kernel kind "${String((v as { kind: unknown }).kind)}": the world supports ${KERNEL_KINDS.map((k) => `"${k}"`).join(', ')} (write the release as a plain string for a synthetic kernel)`,
    });
    return z.NEVER;
  });
/** A parsed kernel entry. */
export type KernelSpec = z.infer<typeof SyntheticKernel> | z.infer<typeof DebianKernel>;

/** One version of the base image. */
export const BaseVersion = z
  .strictObject({
    version: quoted('version', '43.20261101.0').pipe(
      z.string().regex(/^[0-9]+\.[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/, {
        message: 'must look like <fedora>.<date>.<n>, e.g. 43.20261101.0',
      }),
    ),
    kernels: z.array(KernelSpec).min(1, { message: 'list at least one kernel' }),
    ostreeLinux: kernelRelease.optional(),
  })
  .superRefine((v, ctx) => {
    const names = v.kernels.map((k) => k.release);
    if (new Set(names).size !== names.length)
      ctx.addIssue({ code: 'custom', path: ['kernels'], message: 'lists a kernel twice' });
  });

/**
 * Most filler layers a base may have. With Debian 12's buildah 1.28, a container over more than
 * about 58 layers cannot be mounted a second time (containers/storage switches to its long
 * mount-data path, which passes an empty option, and the kernel answers EINVAL); a base version is
 * built with two mounts (copy, then depmod) and composed with a few more layers on top.
 */
export const MAX_FILLER_LAYERS = 50;
/** Largest filler: keeps a typo (`20GB` for `2GB`) from filling the disk. */
export const MAX_FILLER_BYTES = 16 * 1024 ** 3;
/** Smallest filler layer, so every layer holds real content. */
export const MIN_FILLER_LAYER_BYTES = 64 * 1024;

/**
 * Filler layers under the first base version, so the base looks like a rechunked Fedora Atomic
 * image in bulk: `layers` layers (rechunked images have 60 or more) holding `size` bytes in all.
 * The content is pseudo-random (incompressible, so gzip keeps the registry's blobs at full size)
 * and derived from the layer count and size alone, so the filler image is built once per machine.
 */
export const BaseFiller = z
  .strictObject({
    layers: z
      .number()
      .int({ message: 'must be a whole number of layers, e.g. 60' })
      .min(1, { message: 'must be at least 1' })
      .max(MAX_FILLER_LAYERS, {
        message: `must be at most ${MAX_FILLER_LAYERS} (buildah 1.28 cannot mount a container over much deeper images twice)`,
      }),
    size: z.unknown().transform((v, ctx) => {
      const bytes = parseSize(v);
      if (bytes === undefined) {
        ctx.addIssue({
          code: 'custom',
          message: `must be a size such as "250MB", "1GB" or "2GiB" (or a number of bytes), not ${JSON.stringify(v)}`,
        });
        return z.NEVER;
      }
      if (bytes > MAX_FILLER_BYTES) {
        ctx.addIssue({ code: 'custom', message: `must be at most 16GiB (got ${bytes} bytes)` });
        return z.NEVER;
      }
      return bytes;
    }),
  })
  .superRefine((f, ctx) => {
    if (f.size / f.layers < MIN_FILLER_LAYER_BYTES)
      ctx.addIssue({
        code: 'custom',
        path: ['size'],
        message: `gives ${Math.floor(f.size / f.layers)} bytes per layer: use at least ${MIN_FILLER_LAYER_BYTES / 1024} KiB per layer (a larger size or fewer layers)`,
      });
  });
/** A parsed base filler (size in bytes). */
export type BaseFiller = z.infer<typeof BaseFiller>;

/** Layer compressions a world base can be pushed with (buildah push `--compression-format`). */
export const BASE_COMPRESSIONS = ['gzip', 'zstd', 'zstd:chunked'] as const;
/** A base layer compression. */
export type BaseCompression = (typeof BASE_COMPRESSIONS)[number];

const repositoryPath = z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, {
  message: 'must be a lowercase repository path such as ublue-os/kinoite-main',
});

/** One synthetic OpenZFS release: a fixture tree with stand-in modules and the META values given here. */
export const SyntheticZfsRelease = z.strictObject({
  source: z.literal('synthetic').default('synthetic'),
  version: quoted('version', '2.4.4').pipe(
    z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$/, {
      message: 'must be an OpenZFS version such as 2.4.4 or 2.5.0-rc1',
    }),
  ),
  linuxMin: quoted('linuxMin', '4.18')
    .pipe(z.string().regex(/^\d+\.\d+(\.\d+)?$/))
    .default('4.18'),
  linuxMax: quoted('linuxMax', '7.2')
    .pipe(z.string().regex(/^\d+\.\d+(\.\d+)?$/))
    .default('7.2'),
  prerelease: z.boolean().default(false),
  draft: z.boolean().default(false),
});

/**
 * One real OpenZFS release: its real `META` and source tarball, from a folder of real releases
 * (`zfs.openzfsDir`, else $KINOITE_ZFS_OPENZFS_DIR, else the steering repository's shared/openzfs).
 */
export const OpenZfsRelease = z.strictObject({
  source: z.literal('openzfs'),
  tag: z
    .string()
    .regex(/^zfs-[0-9]+\.[0-9]+\.[0-9]+(-rc[0-9]+)?$/, { message: 'must be an OpenZFS tag such as zfs-2.2.7' }),
});

/** One OpenZFS release served by the world's release source: `source: openzfs` (real) or synthetic (the default). */
export const ZfsRelease = z.looseObject({}).transform((v, ctx) => {
  const parsed = (v.source === 'openzfs' ? OpenZfsRelease : SyntheticZfsRelease).safeParse(v);
  if (parsed.success) return parsed.data as z.infer<typeof OpenZfsRelease> | z.infer<typeof SyntheticZfsRelease>;
  for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
  return z.NEVER;
});

/** The whole world spec. */
export const WorldSpec = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'must be lowercase letters, digits and -' }),
    base: z.strictObject({
      repository: repositoryPath,
      versions: z.array(BaseVersion).min(1, { message: 'list at least one base image version' }),
      filler: BaseFiller.optional(),
      /** Compression of the base's layers in the registry (Universal Blue images use zstd:chunked). */
      compression: z
        .enum(BASE_COMPRESSIONS, {
          message: `must be one of ${BASE_COMPRESSIONS.join(', ')} (buildah push --compression-format)`,
        })
        .default('gzip'),
    }),
    builder: z.strictObject({ repository: repositoryPath }),
    /**
     * How the registry admits clients. `none`: anyone may pull and push. `token`: as ghcr.io does it,
     * every request needs a Bearer token from the world's token issuer (Docker token auth); the base
     * and builder repositories are public (anonymous pull), the stream's repositories need the
     * world's user, whose credentials the world writes to `secrets/auth.json` (the config's `registries.authFile`).
     */
    registry: z
      .strictObject({
        auth: z.enum(['none', 'token'], { message: 'must be none or token' }).default('none'),
      })
      .prefault({}),
    zfs: z.strictObject({
      releases: z.array(ZfsRelease).min(1, { message: 'list at least one release' }),
      openzfsDir: z.string().min(1).optional(),
    }),
    recipe: z
      .strictObject({
        append: z
          .record(
            z
              .string()
              .regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/)
              .refine((p) => !p.split('/').includes('..')),
            z.string(),
          )
          .optional(),
      })
      .prefault({}),
    stream: z.strictObject({
      name: z
        .string()
        .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'stream names are lowercase letters, digits and -' }),
      zfsLine: quoted('zfsLine', '2.4').pipe(
        z.string().regex(/^\d+\.\d+$/, { message: 'must be a release line such as 2.4' }),
      ),
      owner: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*$/),
      promotion: z.enum(['auto', 'approval', 'never']).default('auto'),
      approvers: z.array(z.string().min(1)).default([]),
      allowExperimental: z.boolean().default(false),
      /** smoke.boot of the stream; default required when every kernel is a real (debian) one, else off (a synthetic kernel cannot boot). */
      boot: z.enum(['required', 'optional', 'off']).optional(),
      bootTimeout: z
        .string()
        .regex(/^\d+(s|m|h)$/, { message: 'must be a duration such as 90s or 5m' })
        .optional(),
      /** promotion.timeout of the stream (tests use seconds). */
      approvalTimeout: z
        .string()
        .regex(/^\d+(s|m|h|d)$/, { message: 'must be a duration such as 30s or 72h' })
        .optional(),
      /** The stream's webhooks (notify in the config). */
      notify: z.array(z.looseObject({ url: z.string() })).optional(),
      /** retry of the stream: budget, maxBackoff, buildHostWait, onNoBuildHost (tests use seconds; checked by the config schema). */
      retry: z.record(z.string(), z.string()).optional(),
      /** zfs.recheckEvery of the stream (tests use seconds). */
      recheckEvery: z
        .string()
        .regex(/^\d+(s|m|h)$/, { message: 'must be a duration such as 30s or 6h' })
        .optional(),
    }),
  })
  .superRefine((spec, ctx) => {
    const versions = spec.base.versions.map((v) => v.version);
    if (new Set(versions).size !== versions.length)
      ctx.addIssue({ code: 'custom', path: ['base', 'versions'], message: 'lists a version twice' });
    const releases = spec.zfs.releases.map((r) => (r.source === 'openzfs' ? r.tag.slice(4) : r.version));
    if (new Set(releases).size !== releases.length)
      ctx.addIssue({ code: 'custom', path: ['zfs', 'releases'], message: 'lists a release twice' });
    // A real release compiles against the kernel's build tree, which only a real kernel has.
    const synthetic = spec.base.versions.flatMap((v) => v.kernels).filter((k) => k.kind === 'synthetic');
    const real = spec.zfs.releases.filter((r) => r.source === 'openzfs');
    if (synthetic.length && real.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['zfs', 'releases'],
        message: `real OpenZFS releases (${real.map((r) => r.tag).join(', ')}) build against kernel headers, which synthetic kernels (${[...new Set(synthetic.map((k) => k.release))].join(', ')}) do not have: use kind: debian kernels or synthetic releases`,
      });
    }
    if (synthetic.length && spec.stream.boot && spec.stream.boot !== 'off') {
      ctx.addIssue({
        code: 'custom',
        path: ['stream', 'boot'],
        message: `synthetic kernels (${[...new Set(synthetic.map((k) => k.release))].join(', ')}) cannot boot: use kind: debian kernels or boot: off`,
      });
    }
    if (spec.stream.promotion === 'approval' && spec.stream.approvers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['stream', 'approvers'],
        message: 'promotion is approval: list at least one approver',
      });
    }
  });
/** A parsed world spec. */
export type WorldSpec = z.infer<typeof WorldSpec>;
/** A parsed base image version. */
export type BaseVersion = z.infer<typeof BaseVersion>;
/** A parsed OpenZFS release. */
export type ZfsRelease = z.infer<typeof ZfsRelease>;
/** A parsed synthetic OpenZFS release. */
export type SyntheticRelease = z.infer<typeof SyntheticZfsRelease>;

/** A world spec that could not be used; lists every problem with its field path. */
export class WorldSpecError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`${file} is not a valid world spec (see docs/world.md):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'WorldSpecError';
  }
}

/** Validates parsed YAML as a world spec; throws WorldSpecError naming every bad field. */
export function parseWorldSpec(raw: unknown, file: string): WorldSpec {
  const r = WorldSpec.safeParse(raw);
  if (!r.success)
    throw new WorldSpecError(
      file,
      formatIssues(r.error).map((m) => m.replace('docs/configuration.md', 'docs/world.md')),
    );
  return r.data;
}

/** Reads and validates a world spec file. */
export async function loadWorldSpec(file: string): Promise<{ spec: WorldSpec; text: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WorldSpecError(file, [
      `cannot read the file (${(err as NodeJS.ErrnoException).code ?? err}): pass --spec with a path, e.g. world/specs/demo.yaml`,
    ]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new WorldSpecError(file, [`YAML syntax error: ${(err as Error).message.split('\n')[0]}`]);
  }
  return { spec: parseWorldSpec(raw ?? {}, file), text };
}

/** The Fedora version and date suffix of a base version: `43.20261101.0` → `{ fedora: '43', suffix: '20261101.0' }`. */
export function splitVersion(version: string): { fedora: string; suffix: string } {
  const i = version.indexOf('.');
  return { fedora: version.slice(0, i), suffix: version.slice(i + 1) };
}
