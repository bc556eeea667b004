/**
 * Failure vocabulary shared by activities, workflows and the CLI.
 *
 * A permanent failure is a verdict (do not retry: the same input will fail the same way);
 * everything else is a technical fault that Temporal retries.
 */

/** The closed set of permanent failure types; activities raise them as non-retryable failures. */
export const FailureType = {
  InvalidInput: 'InvalidInput',
  ImageNotFound: 'ImageNotFound',
  AuthDenied: 'AuthDenied',
  MissingModulePayload: 'MissingModulePayload',
  SignatureInvalid: 'SignatureInvalid',
  PolicyViolation: 'PolicyViolation',
  ToolMissing: 'ToolMissing',
  CompatibilityBlocked: 'CompatibilityBlocked',
  BuildFailed: 'BuildFailed',
  BootFailed: 'BootFailed',
  ToolFailed: 'ToolFailed',
  InsufficientDiskSpace: 'InsufficientDiskSpace',
} as const;

/** One of the permanent failure type names in {@link FailureType}. */
export type FailureType = (typeof FailureType)[keyof typeof FailureType];

/** An error that must not be retried; `type` tells the operator which class of problem it is. */
export class PermanentError extends Error {
  constructor(
    readonly type: FailureType,
    message: string,
  ) {
    super(message);
    this.name = 'PermanentError';
  }
}

/** Shorthand for a {@link PermanentError} of type InvalidInput. */
export function invalidInput(message: string): PermanentError {
  return new PermanentError(FailureType.InvalidInput, message);
}

/** A value quoted for a message: a JSON string (control characters escaped), cut after 200 characters. */
export function quoteValue(value: unknown): string {
  const text = typeof value === 'string' ? value : String(value ?? '');
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/**
 * The one wording of a refused value, `field: "value" problem`: `config check` prints the same
 * line (with the field's full path), so an operator sees one message wherever the value is refused.
 */
export function invalidValue(field: string, value: unknown, problem: string): PermanentError {
  return invalidInput(`${field}: ${quoteValue(value)} ${problem}`);
}

/** True when `err` is a {@link PermanentError} (also across realms, by name and type). */
export function isPermanentError(err: unknown): err is PermanentError {
  if (err instanceof PermanentError) return true;
  if (typeof err !== 'object' || err === null) return false;
  const e = err as { name?: unknown; type?: unknown };
  return (
    e.name === 'PermanentError' &&
    typeof e.type === 'string' &&
    (Object.values(FailureType) as string[]).includes(e.type)
  );
}

/** What a tool run produced, as seen by the classifier. */
export interface ToolFailure {
  /** Tool name as spawned, e.g. `skopeo`. */
  tool: string;
  /** Exit code, if the process ran at all. */
  exitCode?: number;
  /** Captured standard error (may be long; only its text is inspected). */
  stderr: string;
  /** `code` of the spawn error (e.g. `ENOENT`), when the process could not be started. */
  spawnErrorCode?: string;
}

/** The classifier's verdict for one failed tool run. */
export type ToolFailureClass =
  | { permanent: true; type: FailureType; reason: string }
  /** `unrecognised`: no rule matched; retried a few times, not for the whole network budget. */
  | { permanent: false; reason: string; unrecognised?: true };

interface Rule {
  readonly reason: string;
  readonly pattern: RegExp;
  /** Only for this tool's output, when set. */
  readonly tool?: string;
  /** Undefined means transient. */
  readonly type?: FailureType;
}

/*
 * Rules are checked in order; the first match wins. The order is deliberate:
 *
 * 1. Transient network faults come first. A line like
 *    `pinging container registry x: Get "https://x/v2/": dial tcp ...: connect: connection refused`
 *    says nothing about whether the image exists, and registries behind a broken proxy often add
 *    "not found" noise to a 502 page. Retrying is cheap; wrongly calling an image missing would stop
 *    the pipeline. HTTP 5xx and 429 belong here too.
 * 2. Auth next: registries (ghcr.io, quay.io) answer "denied" or 401/403 for a private repository
 *    that may well exist, and often add "name unknown" as well; the fix is credentials, not the name.
 * 3. Signature problems (cosign) before "not found", because cosign says
 *    "no matching signatures" next to "not found" phrases for missing signature manifests.
 * 4. Invalid reference format: a caller bug, never fixed by retrying.
 * 5. Not found (manifest unknown, name unknown, 404, "not found").
 * Everything else is transient: unknown failures get the benefit of a retry, bounded by the
 * activity's retry policy.
 */
const RULES: readonly Rule[] = [
  { reason: 'connection refused', pattern: /connection refused/i },
  { reason: 'connection reset', pattern: /connection reset by peer/i },
  { reason: 'i/o timeout', pattern: /i\/o timeout/i },
  { reason: 'TLS handshake timeout', pattern: /TLS handshake timeout/i },
  {
    reason: 'network timeout',
    pattern: /(context deadline exceeded|Client\.Timeout exceeded|timed out|Operation too slow)/i,
  },
  // curl's words, as git over http(s) prints them.
  { reason: 'cannot connect', pattern: /(couldn't connect to server|failed to connect to)/i },
  {
    reason: 'DNS lookup failure',
    pattern: /(no such host|could not resolve host|temporary failure in name resolution|server misbehaving)/i,
  },
  { reason: 'network unreachable', pattern: /(network is unreachable|no route to host)/i },
  { reason: 'too many requests', pattern: /(too many requests|toomanyrequests|\b429\b|rate limit)/i },
  {
    reason: 'registry server error',
    pattern: /(\b50[0234]\b|internal server error|bad gateway|service unavailable|gateway time-?out)/i,
  },
  // Case-sensitive on purpose: Go prints `EOF` / `unexpected EOF`, git prints `early EOF`.
  { reason: 'unexpected EOF', pattern: /\bEOF\b/ },
  // git exits 128 for everything; these lines mean the location itself is wrong, which no retry fixes.
  // (git's quoted URLs and paths are masked before matching: see classifyToolFailure.)
  {
    reason: 'no such repository (check recipe.git)',
    pattern:
      /does not appear to be a git repository|not a git repository|repository '[^']*' (does not exist|not found)|^ERROR: Repository not found/im,
    tool: 'git',
    type: FailureType.InvalidInput,
  },
  {
    reason: 'ssh host key not trusted (add it to known_hosts on the worker host)',
    pattern: /Host key verification failed/i,
    tool: 'git',
    type: FailureType.AuthDenied,
  },
  {
    reason: "server certificate not trusted (check recipe.git or the worker host's CA certificates)",
    pattern: /SSL certificate problem|server certificate verification failed/i,
    tool: 'git',
    type: FailureType.InvalidInput,
  },
  {
    reason: 'transport refused (check recipe.git)',
    pattern: /transport '[^']*' not allowed|is not a git command|unable to find remote helper|strange pathname/i,
    tool: 'git',
    type: FailureType.InvalidInput,
  },
  {
    reason: 'authentication failed',
    pattern:
      /(unauthorized|authentication required|authentication failed|could not read Username|Permission denied \(publickey)/i,
    type: FailureType.AuthDenied,
  },
  {
    // A local `open /x: permission denied` is not a registry answer, so it is excluded here.
    reason: 'access denied',
    pattern: /((?<!permission )\bdenied\b|not authorized)/i,
    type: FailureType.AuthDenied,
  },
  { reason: 'HTTP 401/403', pattern: /(\b401\b|\b403\b|\bforbidden\b)/i, type: FailureType.AuthDenied },
  {
    reason: 'signature verification failed',
    pattern:
      /(no matching signatures|no signatures found|signature mismatch|invalid signature|failed to verify signature|signature verification failed)/i,
    type: FailureType.SignatureInvalid,
  },
  {
    // Wrong cosign key password or a corrupt key file: retrying cannot help.
    reason: 'signing key could not be decrypted',
    pattern: /decryption failed/i,
    type: FailureType.InvalidInput,
  },
  {
    reason: 'invalid reference format',
    pattern: /(invalid reference format|repository name must be lowercase|did not resolve to an alias)/i,
    type: FailureType.InvalidInput,
  },
  {
    reason: 'image not found',
    pattern: /(manifest unknown|name unknown|\bnot found\b|\b404\b|image not known|no such image)/i,
    type: FailureType.ImageNotFound,
  },
];

/**
 * Classifier that maps a failed tool run to a permanent failure type or "transient".
 *
 * A spawn error `ENOENT` (or exit code 127 from a wrapper) means the tool is not installed:
 * permanent ToolMissing. Otherwise the first matching stderr rule decides (see the rule order
 * above); an unrecognised failure is transient.
 */
export function classifyToolFailure(input: ToolFailure): ToolFailureClass {
  const { tool, exitCode, stderr, spawnErrorCode } = input;
  // 127 is what a shell or `env` wrapper returns when it cannot find the program.
  const notOnPath =
    exitCode === 127 && /(command not found|executable file not found|No such file or directory)/i.test(stderr);
  if (spawnErrorCode === 'ENOENT' || notOnPath) {
    return {
      permanent: true,
      type: FailureType.ToolMissing,
      reason: `${tool} is not installed or not on PATH; install it on the worker host`,
    };
  }
  if (spawnErrorCode === 'EACCES') {
    return {
      permanent: true,
      type: FailureType.ToolMissing,
      reason: `${tool} exists but is not executable; fix its permissions on the worker host`,
    };
  }
  // git quotes the URL or path in its lines ('https://host/500/denied.git/'): masked, so a status code
  // or a word inside the location cannot decide the verdict.
  const text = tool === 'git' ? stderr.replace(/'[^'\n]*'/g, "'…'") : stderr;
  for (const rule of RULES) {
    if ((rule.tool === undefined || rule.tool === tool) && rule.pattern.test(text)) {
      const reason = `${tool}: ${rule.reason}`;
      return rule.type === undefined ? { permanent: false, reason } : { permanent: true, type: rule.type, reason };
    }
  }
  const code = exitCode === undefined ? (spawnErrorCode ?? 'unknown') : String(exitCode);
  return { permanent: false, reason: `${tool}: unrecognised failure (exit ${code})`, unrecognised: true };
}
