/**
 * Every tag name the project writes, built in one place and checked as an OCI tag.
 */
import { FailureType, PermanentError } from './errors.ts';
import { isValidTag } from './refs.ts';
import { sha256Hex } from './hash.ts';

/** Longest akmods alias prefix (original §7.3), leaving room for `-<fedora>` under the 128 limit. */
export const BRANCH_PREFIX_MAX = 120;

function checked(tag: string, what: string): string {
  if (!isValidTag(tag)) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `Refusing to use ${what} tag ${JSON.stringify(tag)}: it is not a valid OCI tag ` +
        '(1-128 characters of [A-Za-z0-9_.-], not starting with . or -); check the inputs it was built from',
    );
  }
  return tag;
}

function requirePart(value: string, field: string, pattern: RegExp, hint: string): string {
  if (typeof value !== 'string' || !pattern.test(value)) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `${field} ${JSON.stringify(String(value))} is not valid for a tag; expected ${hint}`,
    );
  }
  return value;
}

const FEDORA = /^[0-9]{1,4}$/;

/**
 * The akmods alias prefix for a branch, exactly as the original computed it (§7.3):
 * lowercase; runs outside `[a-z0-9._-]` become one `-`; leading/trailing `-` stripped;
 * empty becomes `branch`; `br-` + value cut to 120 characters, then trailing `-` stripped.
 *
 * Lowercasing happens before the replacement, so `ÄÖÜ` (lowercased to `äöü`) still vanishes.
 */
export function sanitizeBranch(branch: string): string {
  let v = String(branch).toLowerCase();
  v = v.replace(/[^a-z0-9._-]+/g, '-');
  v = v.replace(/^-+/, '').replace(/-+$/, '');
  if (v === '') v = 'branch';
  let prefix = `br-${v}`.slice(0, BRANCH_PREFIX_MAX).replace(/-+$/, '');
  if (prefix === '') prefix = 'br-branch';
  return checked(prefix, 'branch prefix');
}

/** Candidate image tag `<sha7>-<fedora>`, e.g. `abc1234-43`. */
export function candidateTag(input: { sha7: string; fedora: string }): string {
  const sha7 = requirePart(input.sha7, 'sha7', /^[0-9a-f]{7,40}$/, 'a lowercase hex git commit prefix');
  const fedora = requirePart(input.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  return checked(`${sha7}-${fedora}`, 'candidate');
}

function normalPrefix(prefix: string | undefined): string {
  const p = (prefix ?? '').trim();
  return p === '' ? 'main' : p;
}

/** Akmods cache tag `<prefix>-<fedora>`; an empty or blank prefix means `main` (e.g. `main-43`). */
export function akmodsCacheTag(input: { prefix?: string; fedora: string }): string {
  const fedora = requirePart(input.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  return checked(`${normalPrefix(input.prefix)}-${fedora}`, 'akmods cache');
}

/**
 * Per-kernel akmods tag `<prefix>-<fedora>-<kernel>`, e.g. `main-43-6.18.16-200.fc43.x86_64`. Kernel
 * releases may hold `+` and `~` (Debian's `6.12.117+deb12-cloud-amd64`), which tags may not: those
 * become `_` and a short hash of the real release keeps two such kernels apart.
 */
export function akmodsKernelTag(input: { prefix?: string; fedora: string; kernel: string }): string {
  const fedora = requirePart(input.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  const safe = input.kernel.replace(/[+~]/g, '_');
  const kernel = safe === input.kernel ? safe : `${safe}-${sha256Hex(input.kernel).slice(0, 8)}`;
  return checked(`${normalPrefix(input.prefix)}-${fedora}-${kernel}`, 'akmods kernel');
}

/** Audit tag for a promotion, `stable-<run>-<sha7>`. */
export function auditTag(input: { run: string | number; sha7: string }): string {
  const sha7 = requirePart(input.sha7, 'sha7', /^[0-9a-f]{7,40}$/, 'a lowercase hex git commit prefix');
  return checked(`stable-${String(input.run)}-${sha7}`, 'audit');
}

/**
 * The prefix of a branch's tags and run ids: {@link sanitizeBranch}, unique per branch name. Where
 * sanitising loses anything (case, characters outside `[a-z0-9._-]`, length), two branches could
 * meet (`Feature/X` and `feature-x`; every all-non-ASCII name is `br-branch`), so the first 8 hex
 * digits of the SHA-256 of the real name are appended: `br-feature-x-1a2b3c4d`.
 */
export function branchPrefix(branch: string): string {
  const plain = sanitizeBranch(branch);
  if (plain === `br-${branch}`) return plain;
  const hash = sha256Hex(String(branch)).slice(0, 8);
  return checked(`${plain.slice(0, BRANCH_PREFIX_MAX - 9).replace(/-+$/, '')}-${hash}`, 'branch prefix');
}

/** Branch tag `<branchPrefix(branch)>-<fedora>`. */
export function branchTag(input: { branch: string; fedora: string }): string {
  const fedora = requirePart(input.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  return checked(`${branchPrefix(input.branch)}-${fedora}`, 'branch');
}

/** Pull-request tag `pr-<number>-<fedora>`. */
export function prTag(input: { number: number | string; fedora: string }): string {
  const n = requirePart(String(input.number), 'pull request number', /^[1-9][0-9]{0,9}$/, 'a positive integer');
  const fedora = requirePart(input.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  return checked(`pr-${n}-${fedora}`, 'pull request');
}

/**
 * The tag a branch or PR run writes its candidate under (and a branch run its akmods alias):
 * {@link branchTag} or {@link prTag}; undefined for a main run, which uses the tag plan's.
 */
export function modeTag(input: {
  mode: 'main' | 'branch' | 'pr';
  branch?: string;
  pr?: number;
  fedora: string;
}): string | undefined {
  if (input.mode === 'branch') return branchTag({ branch: input.branch ?? '', fedora: input.fedora });
  if (input.mode === 'pr') return prTag({ number: input.pr ?? 0, fedora: input.fedora });
  return undefined;
}

/**
 * A configured tag pattern with `{fedora}` replaced, e.g. `main-{fedora}` → `main-43`.
 *
 * @throws PermanentError InvalidInput for unknown placeholders or a result that is not a valid tag.
 */
export function expandTagPattern(pattern: string, vars: { fedora: string }): string {
  const fedora = requirePart(vars.fedora, 'fedora', FEDORA, 'a Fedora version number such as 43');
  const out = String(pattern).replace(/\{([^{}]*)\}/g, (whole, key: string) => {
    if (key === 'fedora') return fedora;
    throw new PermanentError(
      FailureType.InvalidInput,
      `Tag pattern ${JSON.stringify(pattern)} uses unknown placeholder ${whole}; only {fedora} is supported`,
    );
  });
  return checked(out, `pattern ${JSON.stringify(pattern)}`);
}

const DATED_TAG = /-[0-9]{8}(\.[0-9]+)?$/;
const VERSION_LABEL = /^[0-9]+\.([0-9]{8}(?:\.[0-9]+)?)$/;

/**
 * The immutable base-image tags to try, in order (original §5.2).
 *
 * A source tag already ending in `-YYYYMMDD` or `-YYYYMMDD.N` is the only candidate. Otherwise the
 * suffix comes from the version label (`43.20260227.1` → `20260227.1`) and the candidates are
 * `<sourceTag>-<suffix>` (when there is a source tag), `latest-<suffix>`, `<fedora>-<suffix>`,
 * de-duplicated.
 *
 * @throws PermanentError InvalidInput when the label does not have that shape.
 */
export function immutableBaseTagCandidates(input: {
  sourceTag: string;
  versionLabel: string | undefined;
  fedora: string;
}): string[] {
  const sourceTag = input.sourceTag ?? '';
  if (sourceTag !== '' && DATED_TAG.test(sourceTag)) return [checked(sourceTag, 'base image')];
  const label = input.versionLabel ?? '';
  const m = VERSION_LABEL.exec(label);
  if (!m) {
    throw new PermanentError(
      FailureType.InvalidInput,
      `Failed to derive immutable base tag from org.opencontainers.image.version=${label}; ` +
        'use a base image whose version label looks like 43.20260227.1, or pin the base by a dated tag',
    );
  }
  const suffix = m[1]!;
  const out: string[] = [];
  for (const head of [sourceTag, 'latest', input.fedora]) {
    if (!head) continue;
    const tag = checked(`${head}-${suffix}`, 'base image');
    if (!out.includes(tag)) out.push(tag);
  }
  return out;
}
