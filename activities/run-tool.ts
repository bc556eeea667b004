/**
 * The runner: the only place that spawns external tools (podman, buildah, skopeo, cosign, git).
 *
 * Arguments are always arrays (no shell). Inside an activity the child is killed when the activity
 * is cancelled, and every output line counts as the activity's progress (its heartbeats). Secrets
 * reach a child only through its environment, and every value listed in `secrets` is redacted from
 * anything we log or throw.
 * A failure is classified (core/errors.ts): permanent ones become PermanentError, the rest stay
 * plain errors that Temporal retries.
 */
import { execa, type ExecaError } from 'execa';
import { Context } from '@temporalio/activity';
import { classifyToolFailure, PermanentError, FailureType } from '../core/errors.ts';
import { progressNoter } from './progress.ts';

/** One tool invocation. */
export interface ToolCall {
  /** Executable name or path. */
  tool: string;
  /** Arguments, one per element; never joined into a shell string. */
  args: string[];
  /** Extra environment for the child only (secrets go here, never into args). */
  env?: Record<string, string | undefined>;
  /** Working directory. */
  cwd?: string;
  /** Values to redact from logs and error messages (passwords, tokens). */
  secrets?: string[];
  /** Kill the child after this many milliseconds. @default no limit (the activity timeout applies) */
  timeoutMs?: number;
  /** Text passed on standard input. */
  input?: string;
  /** Called with each line of standard error/output as it arrives (progress). */
  onLine?: (line: string) => void;
  /**
   * The tool may be silent for longer than the stall window while it works (a compiler build whose
   * output goes to a log file: configure and make of OpenZFS each take minutes): every
   * {@link ALIVE_EVERY_MS} while its process runs counts as progress, and a hang is bounded by the
   * activity's start-to-close timeout instead.
   */
  silentWhileWorking?: boolean;
  /** How often a `silentWhileWorking` tool counts as progress (tests use milliseconds). @default ALIVE_EVERY_MS */
  aliveEveryMs?: number;
}

/** How often a running `silentWhileWorking` tool counts as progress. */
export const ALIVE_EVERY_MS = 30_000;

/** What a finished tool run printed. */
export interface ToolResult {
  stdout: string;
  stderr: string;
}

/** Replaces every secret value in `text` with `***`. */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text;
  for (const s of secrets) if (s && s.length >= 3) out = out.split(s).join('***');
  return out;
}

/** A printable form of a command line for logs; secrets are never in args, but redact anyway. */
export function describeCommand(call: Pick<ToolCall, 'tool' | 'args' | 'secrets'>): string {
  return redact(
    [call.tool, ...call.args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a)))].join(' '),
    call.secrets,
  );
}

function activityContext(): Context | undefined {
  try {
    return Context.current();
  } catch {
    return undefined;
  }
}

/**
 * A tool failed in a way the classifier does not recognise: retried, but only a few times
 * (activities/index.ts), not for the whole network retry budget that a registry outage gets.
 */
export class UnrecognisedToolFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnrecognisedToolFailure';
  }
}

/** Names of variables that look like secrets; children get them only when a call passes them explicitly. */
const SECRET_NAME = /(TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|PRIVATE_KEY|CREDENTIALS?)$/i;

/** The worker's environment without secret-looking variables, plus the call's own variables. */
export function childEnv(
  base: NodeJS.ProcessEnv,
  extra: Record<string, string | undefined> = {},
): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(base)) if (!SECRET_NAME.test(k)) env[k] = v;
  return { ...env, ...extra };
}

/** Runs a tool to completion; throws PermanentError or a retryable Error with a clear message. */
export async function runTool(call: ToolCall): Promise<ToolResult> {
  const ctx = activityContext();
  const command = describeCommand(call);
  // Every output line is progress: the activity heartbeats while its tool prints (activities/progress.ts).
  const note = progressNoter();
  const alive = call.silentWhileWorking ? setInterval(() => note({}), call.aliveEveryMs ?? ALIVE_EVERY_MS) : undefined;
  try {
    const child = execa(call.tool, call.args, {
      cwd: call.cwd,
      env: childEnv(process.env, call.env),
      extendEnv: false,
      input: call.input,
      stdin: call.input === undefined ? 'ignore' : undefined,
      timeout: call.timeoutMs,
      cancelSignal: ctx?.cancellationSignal,
      forceKillAfterDelay: 5_000,
      maxBuffer: 64 * 1024 * 1024,
      stripFinalNewline: true,
      // NOTE: a detached process group lets cancellation kill podman and its conmon children together.
      detached: false,
    });
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream?.on('data', (chunk: Buffer) => {
        buf += chunk.toString();
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          const line = redact(buf.slice(0, i), call.secrets);
          buf = buf.slice(i + 1);
          note({ line });
          call.onLine?.(line);
        }
      });
    }
    const result = await child;
    return { stdout: String(result.stdout ?? ''), stderr: String(result.stderr ?? '') };
  } catch (err) {
    throw toolError(call, command, err as ExecaError);
  } finally {
    clearInterval(alive);
  }
}

function toolError(call: ToolCall, command: string, err: ExecaError): Error {
  const stderr = redact(String(err.stderr ?? ''), call.secrets);
  const stdout = redact(String(err.stdout ?? ''), call.secrets);
  const spawnCode =
    (err.cause as NodeJS.ErrnoException | undefined)?.code ?? (err as unknown as NodeJS.ErrnoException).code;
  if (err.isCanceled) return new Error(`${call.tool} was cancelled: ${command}`);
  if (err.timedOut) return new Error(`${call.tool} timed out after ${call.timeoutMs} ms: ${command}`);
  if (spawnCode === 'ENOENT' && err.exitCode === undefined) {
    return new PermanentError(
      FailureType.ToolMissing,
      `${call.tool} is not installed on this worker host (${command}). Install it (scripts/setup.sh does) or serve only the queues whose tools this host has.`,
    );
  }
  const tail = (stderr || stdout).trim().split('\n').slice(-12).join('\n');
  const verdict = classifyToolFailure({
    tool: call.tool,
    exitCode: err.exitCode,
    stderr: `${stderr}\n${stdout}`,
    spawnErrorCode: spawnCode,
  });
  const message = `Command failed (exit ${err.exitCode ?? '?'}): ${command}\n${tail}`;
  if (verdict.permanent) return new PermanentError(verdict.type, `${message}\n(${verdict.reason})`);
  return verdict.unrecognised
    ? new UnrecognisedToolFailure(`${message}\n(${verdict.reason}; will be retried)`)
    : new Error(`${message}\n(${verdict.reason}; will be retried)`);
}

/** What a credential helper answered. */
export interface CredentialHelperAnswer {
  /** True when the helper is not installed. */
  missing: boolean;
  exitCode?: number;
  /** Holds the secret on success: the caller parses it and never logs it. */
  stdout: string;
  stderr: string;
}

/**
 * Runs `docker-credential-<name> get` with `host` on standard input. Unlike {@link runTool}, its
 * output is never progress, never logged and never put in an error (on success it is the secret);
 * the helper gets the worker's whole environment, as it would from podman or docker.
 */
export async function runCredentialHelper(program: string, host: string): Promise<CredentialHelperAnswer> {
  const r = await execa(program, ['get'], {
    input: host,
    reject: false,
    timeout: 60_000,
    cancelSignal: activityContext()?.cancellationSignal,
    stripFinalNewline: true,
  });
  const code = (r.cause as NodeJS.ErrnoException | undefined)?.code ?? (r as unknown as NodeJS.ErrnoException).code;
  return {
    missing: code === 'ENOENT' && r.exitCode === undefined,
    exitCode: r.exitCode,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
  };
}
