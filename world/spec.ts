/**
 * The world spec: a small YAML file describing one hermetic test world (base image versions and
 * their kernels, the builder image, OpenZFS releases, recipe changes, the stream). Documented in
 * docs/world.md; `kinoite-zfs world up --spec FILE` reads it.
 */
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { formatIssues } from '../client/config-file.ts';

/** A string that YAML must not have turned into a number (4.10 would silently become 4.1). */
const quoted = (what: string, example: string) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v === 'string' && v.length > 0) return v;
    ctx.addIssue({
      code: 'custom',
      message: typeof v === 'number' ? `${what} must be a quoted string (YAML read ${v} as a number): write "${example}"` : `${what} is required, e.g. "${example}"`,
    });
    return z.NEVER;
  });

const KERNEL_RELEASE = /^[0-9][A-Za-z0-9._+~-]{0,127}$/;
const kernelRelease = z.string().regex(KERNEL_RELEASE, { message: 'must be a kernel release such as 6.18.3-200.fc43.x86_64' });

/**
 * A synthetic kernel: a `/usr/lib/modules/<release>/` directory with plausible files and a real
 * `depmod` run, but no real kernel (no headers; the builder writes a fixture module for it).
 */
export const SyntheticKernel = z.strictObject({
  kind: z.literal('synthetic'),
  release: kernelRelease,
});

/** Kernel kinds the world can make today; `debian` (a real kernel package with headers) comes next. */
export const KERNEL_KINDS = ['synthetic'] as const;

/** One kernel of a base image version: a release string (synthetic) or an object with a `kind`. */
export const KernelSpec = z.union([kernelRelease.transform((release) => ({ kind: 'synthetic' as const, release })), z.looseObject({ kind: z.string() })]).transform((v, ctx) => {
  if (typeof v === 'object' && v.kind === 'synthetic') {
    const parsed = SyntheticKernel.safeParse(v);
    if (parsed.success) return parsed.data;
    for (const issue of parsed.error.issues) ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
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
export type KernelSpec = z.infer<typeof SyntheticKernel>;

/** One version of the base image. */
export const BaseVersion = z
  .strictObject({
    version: quoted('version', '43.20261101.0').pipe(
      z.string().regex(/^[0-9]+\.[A-Za-z0-9][A-Za-z0-9._-]{0,100}$/, { message: 'must look like <fedora>.<date>.<n>, e.g. 43.20261101.0' }),
    ),
    kernels: z.array(KernelSpec).min(1, { message: 'list at least one kernel' }),
    ostreeLinux: kernelRelease.optional(),
  })
  .superRefine((v, ctx) => {
    const names = v.kernels.map((k) => k.release);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['kernels'], message: 'lists a kernel twice' });
  });

const repositoryPath = z
  .string()
  .regex(/^[a-z0-9]+([._-][a-z0-9]+)*(\/[a-z0-9]+([._-][a-z0-9]+)*)*$/, { message: 'must be a lowercase repository path such as ublue-os/kinoite-main' });

/** One OpenZFS release served by the world's release source. */
export const ZfsRelease = z.strictObject({
  version: quoted('version', '2.4.4').pipe(z.string().regex(/^[0-9]+\.[0-9]+\.[0-9]+(-[A-Za-z0-9.]+)?$/, { message: 'must be an OpenZFS version such as 2.4.4 or 2.5.0-rc1' })),
  linuxMin: quoted('linuxMin', '4.18').pipe(z.string().regex(/^\d+\.\d+(\.\d+)?$/)).default('4.18'),
  linuxMax: quoted('linuxMax', '7.2').pipe(z.string().regex(/^\d+\.\d+(\.\d+)?$/)).default('7.2'),
  prerelease: z.boolean().default(false),
  draft: z.boolean().default(false),
});

/** The whole world spec. */
export const WorldSpec = z
  .strictObject({
    name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'must be lowercase letters, digits and -' }),
    base: z.strictObject({
      repository: repositoryPath,
      versions: z.array(BaseVersion).min(1, { message: 'list at least one base image version' }),
    }),
    builder: z.strictObject({ repository: repositoryPath }),
    zfs: z.strictObject({ releases: z.array(ZfsRelease).min(1, { message: 'list at least one release' }) }),
    recipe: z
      .strictObject({
        append: z
          .record(z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/).refine((p) => !p.split('/').includes('..')), z.string())
          .optional(),
      })
      .prefault({}),
    stream: z.strictObject({
      name: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'stream names are lowercase letters, digits and -' }),
      zfsLine: quoted('zfsLine', '2.4').pipe(z.string().regex(/^\d+\.\d+$/, { message: 'must be a release line such as 2.4' })),
      owner: z.string().regex(/^[a-z0-9]+([._-][a-z0-9]+)*$/),
      promotion: z.enum(['auto', 'approval', 'never']).default('auto'),
      approvers: z.array(z.string().min(1)).default([]),
      allowExperimental: z.boolean().default(false),
    }),
  })
  .superRefine((spec, ctx) => {
    const versions = spec.base.versions.map((v) => v.version);
    if (new Set(versions).size !== versions.length) ctx.addIssue({ code: 'custom', path: ['base', 'versions'], message: 'lists a version twice' });
    const releases = spec.zfs.releases.map((r) => r.version);
    if (new Set(releases).size !== releases.length) ctx.addIssue({ code: 'custom', path: ['zfs', 'releases'], message: 'lists a release twice' });
    if (spec.stream.promotion === 'approval' && spec.stream.approvers.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['stream', 'approvers'], message: 'promotion is approval: list at least one approver' });
    }
  });
/** A parsed world spec. */
export type WorldSpec = z.infer<typeof WorldSpec>;
/** A parsed base image version. */
export type BaseVersion = z.infer<typeof BaseVersion>;
/** A parsed OpenZFS release. */
export type ZfsRelease = z.infer<typeof ZfsRelease>;

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
  if (!r.success) throw new WorldSpecError(file, formatIssues(r.error).map((m) => m.replace('docs/configuration.md', 'docs/world.md')));
  return r.data;
}

/** Reads and validates a world spec file. */
export async function loadWorldSpec(file: string): Promise<{ spec: WorldSpec; text: string }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new WorldSpecError(file, [`cannot read the file (${(err as NodeJS.ErrnoException).code ?? err}): pass --spec with a path, e.g. world/specs/demo.yaml`]);
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
