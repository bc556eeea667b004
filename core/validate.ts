/**
 * The one table of value rules. Every value a run or an activity would refuse is refused by the
 * same rule, with the same message, at three places: the config schema (`config check`, and the CLI
 * before it contacts Temporal, since it loads the config first), the pipeline run before any
 * activity (`validatePlan`), and the activity that hands the value to a tool or a request.
 *
 * A rule says why a value is refused (the text after the quoted value) or nothing when it passes;
 * the message is always `field: "value" problem` ({@link invalidValue}). No zod here: workflows
 * import this module (the schema's wrapper, `ruled`, is in config.ts).
 */
import { invalidInput, quoteValue } from './errors.ts';
import { redactUrl } from './notify.ts';
import {
  TAG_GRAMMAR,
  gitLocationProblem,
  gitRefProblem,
  imageRefProblem,
  isValidTag,
  parseImageRef,
  registryHostProblem,
  safeTokenProblem,
} from './refs.ts';

/** One rule of the table. */
export interface ValueRule {
  /** What a valid value is, in a few words. */
  readonly what: string;
  /** Why `value` is refused (the text after the quoted value), or undefined when it passes. */
  readonly problem: (value: string) => string | undefined;
  /** Quote only scheme, host and port of the value: it may hold a token (webhook URLs). */
  readonly conceal?: true;
  /** A looser outline of the rule for editors, in the generated JSON Schema. */
  readonly schema?: { pattern?: string; format?: 'uri'; minLength?: number };
}

const MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The longest duration any setting may take (ten years): beyond it timers and dates overflow. */
const MAX_DURATION_MS = 3650 * MS.d;
const DURATION = /^(\d{1,12})(ms|s|m|h|d)$/;

function urlProblem(url: string, example: string): string | undefined {
  if (/[\s\u0000-\u001f\u007f]/.test(url)) return 'contains whitespace or control characters; remove them';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `is not a URL; give an http:// or https:// URL such as ${example}`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    return `uses the "${parsed.protocol.slice(0, -1)}" scheme; only http:// and https:// URLs are allowed here`;
  return undefined;
}

/** The rules, by name. */
export const Rules = {
  safeToken: {
    what: 'one argument for a tool',
    problem: safeTokenProblem,
    schema: { minLength: 1 },
  },
  recipeLocation: {
    what: 'git URL (https, http, ssh, git, file), user@host:path or local path',
    problem: gitLocationProblem,
    schema: { minLength: 1 },
  },
  gitRef: {
    what: 'git branch, tag or commit',
    problem: gitRefProblem,
    schema: { minLength: 1 },
  },
  imageRef: {
    what: 'image reference registry/repository[:tag][@sha256:digest]',
    problem: imageRefProblem,
    schema: { minLength: 1 },
  },
  repository: {
    what: 'image repository without tag or digest',
    problem: (v) => {
      const problem = imageRefProblem(v);
      if (problem) return problem;
      const ref = parseImageRef(v);
      if (ref.tag !== undefined || ref.digest !== undefined)
        return 'has a tag or digest; give the repository alone, e.g. ghcr.io/owner/kinoite-zfs';
      return undefined;
    },
    schema: { minLength: 1 },
  },
  tag: {
    what: 'OCI tag',
    problem: (v) => (isValidTag(v) ? undefined : `is not a valid OCI tag; ${TAG_GRAMMAR}`),
    schema: { pattern: '^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$' },
  },
  tagPattern: {
    what: 'OCI tag where {fedora} stands for the Fedora version',
    problem: (v) =>
      isValidTag(v.replaceAll('{fedora}', '43'))
        ? undefined
        : `is not a valid tag pattern; ${TAG_GRAMMAR}, and {fedora} may stand for the Fedora version, e.g. latest or {fedora}`,
    schema: { pattern: '^([A-Za-z0-9_]|\\{fedora\\})([A-Za-z0-9._-]|\\{fedora\\})*$' },
  },
  tagPrefix: {
    what: 'prefix of akmods cache tags',
    problem: (v) =>
      /^[a-z0-9][a-z0-9._-]{0,40}$/.test(v)
        ? undefined
        : 'is not a tag prefix; use 1-41 lowercase letters, digits, . _ - starting with a letter or digit, e.g. main',
    schema: { pattern: '^[a-z0-9][a-z0-9._-]{0,40}$' },
  },
  registryHost: {
    what: 'registry host or host:port',
    problem: registryHostProblem,
    schema: { pattern: '^[A-Za-z0-9.-]+(:\\d+)?$' },
  },
  listenAddress: {
    what: 'host:port to listen on',
    problem: (v) => {
      const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
      if (!m) return 'is not host:port; give an address such as 127.0.0.1:9464 or 0.0.0.0:9464';
      const port = Number(m[2]);
      return port >= 1 && port <= 65535 ? undefined : `has port ${port}; a port is 1 to 65535`;
    },
    schema: { pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):\\d{1,5}$' },
  },
  httpUrl: {
    what: 'http:// or https:// URL',
    problem: (v) => urlProblem(v, 'https://example.com/path'),
    schema: { format: 'uri', pattern: '^https?://' },
  },
  webhookUrl: {
    what: 'http:// or https:// URL of a webhook',
    problem: (v) => urlProblem(v, 'https://example.com/hook'),
    conceal: true,
    schema: { format: 'uri', pattern: '^https?://' },
  },
  releaseUrlTemplate: {
    what: 'http:// or https:// URL where {tag} and {version} are expanded',
    problem: (v) => {
      const unknown = /\{(?!tag\}|version\})[^}]*\}?/.exec(v)?.[0];
      if (unknown) return `has an unknown placeholder ${quoteValue(unknown)}; only {tag} and {version} are expanded`;
      return urlProblem(
        v.replaceAll('{tag}', 'zfs-2.4.4').replaceAll('{version}', '2.4.4'),
        'https://example.com/{tag}/META',
      );
    },
    schema: { pattern: '^https?://' },
  },
  duration: {
    what: 'duration such as 30s, 15m, 24h or 7d',
    problem: (v) => {
      const m = DURATION.exec(v);
      if (!m) return 'is not a duration; give a whole number and a unit (ms, s, m, h, d) such as 30s, 15m, 24h or 7d';
      const ms = Number(m[1]) * MS[m[2] as keyof typeof MS];
      if (ms === 0) return 'is zero; give a duration longer than 0 such as 30s';
      if (ms > MAX_DURATION_MS) return 'is longer than 3650d (ten years); give a shorter duration';
      return undefined;
    },
    schema: { pattern: '^\\d+(ms|s|m|h|d)$' },
  },
  recipePath: {
    what: 'relative folder inside the recipe repository',
    problem: (v) =>
      !/^[A-Za-z0-9._/-]*$/.test(v)
        ? 'is not a folder path; use letters, digits and . _ - / relative to the repository root, e.g. recipes'
        : v.startsWith('/') || v.split('/').includes('..')
          ? 'leaves the repository; give a folder inside it (no .. and no leading /)'
          : undefined,
    schema: { pattern: '^[A-Za-z0-9._/-]*$' },
  },
  pinnedImageRef: {
    what: 'image reference pinned by digest registry/repository@sha256:digest',
    problem: (v) =>
      imageRefProblem(v) ??
      (parseImageRef(v).digest === undefined
        ? 'is not pinned by digest; give repository@sha256:<64 hex digits>, e.g. the base_image_pinned of a build-inputs.json'
        : undefined),
    schema: { pattern: '@sha256:[0-9a-f]{64}$' },
  },
  gitCommit: {
    what: 'full git commit id (40 hex digits)',
    problem: (v) =>
      /^[0-9a-f]{40}$/.test(v)
        ? undefined
        : 'is not a full commit id; give the 40 lowercase hex digits of the commit (git rev-parse <ref>)',
    schema: { pattern: '^[0-9a-f]{40}$' },
  },
  taskQueue: {
    what: 'Temporal task queue name',
    problem: (v) =>
      /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/.test(v)
        ? undefined
        : 'is not a task queue name; use letters, digits, ".", "_" and "-" (such as kinoite-zfs-build-aarch64)',
    schema: { pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$' },
  },
  zfsLine: {
    what: 'OpenZFS release line major.minor',
    problem: (v) => (/^\d+\.\d+$/.test(v) ? undefined : 'is not a release line; give major.minor such as 2.4'),
    schema: { pattern: '^\\d+\\.\\d+$' },
  },
} as const satisfies Record<string, ValueRule>;

/** The name of a rule in {@link Rules}. */
export type RuleName = keyof typeof Rules;

/** Why `value` breaks rule `rule`, or undefined when it passes (a non-string never passes). */
export function valueProblem(rule: RuleName, value: unknown): string | undefined {
  if (typeof value !== 'string') return `is not a string; give a ${Rules[rule].what}`;
  return Rules[rule].problem(value);
}

/**
 * The refusal of `value` by rule `rule` after its field name, `"value" problem`, or undefined when
 * it passes. The config check prints it after the field's path; {@link checkValue} after the field.
 */
export function refusal(rule: RuleName, value: unknown): string | undefined {
  const problem = valueProblem(rule, value);
  if (!problem) return undefined;
  const r: ValueRule = Rules[rule];
  return `${quoteValue(r.conceal && typeof value === 'string' ? redactUrl(value) : value)} ${problem}`;
}

/**
 * Checks one value where it is used (defence in depth behind the config check).
 * @returns the value, unchanged, when it passes.
 * @throws PermanentError InvalidInput `field: "value" problem`, the config check's own words.
 */
export function checkValue(rule: RuleName, value: string, field: string): string {
  const refused = refusal(rule, value);
  if (refused) throw invalidInput(`${field}: ${refused}`);
  return value;
}

/** A duration setting in milliseconds, checked by the `duration` rule. */
export function durationMs(value: string, field = 'duration'): number {
  checkValue('duration', value, field);
  const [, n, unit] = DURATION.exec(value)!;
  return Number(n) * MS[unit as keyof typeof MS];
}
