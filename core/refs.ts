/**
 * Image reference parsing and validation, applied where references enter the system
 * (config, CLI, workflow input), so every later tool call gets a checked value.
 */
import { invalidValue, quoteValue } from './errors.ts';

/** A parsed, validated image reference. */
export interface ImageRef {
  /** Registry host, with port when given, e.g. `ghcr.io` or `localhost:5000`; `docker.io` by default. */
  registry: string;
  /** Repository path inside the registry, e.g. `ublue-os/kinoite-main`; always lowercase. */
  repository: string;
  /** `registry/repository`: the reference without tag or digest. */
  name: string;
  /** Tag, when the reference has one. */
  tag?: string;
  /** Digest (`sha256:<64 hex>`), when the reference has one. */
  digest?: string;
}

/** Characters a shell would interpret; none may appear in anything we pass to a tool. */
const SHELL_META = /[;|&$`<>(){}'"\\*?!#~^]/;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** One repository path component (distribution/reference grammar). */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
/** A registry host with an optional port. */
const REGISTRY =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]{1,5})?$/;
/** distribution/reference limits the name (registry/repository) to 255 characters. */
const MAX_NAME_LENGTH = 255;

/** What a tag must be, said once for every message about a tag. */
export const TAG_GRAMMAR = 'a tag is 1-128 characters of [A-Za-z0-9_.-] and cannot start with . or -';

/** True when `tag` is a valid OCI tag (at most 128 characters of `[A-Za-z0-9_.-]`, not starting with `.` or `-`). */
export function isValidTag(tag: string): boolean {
  return typeof tag === 'string' && TAG.test(tag);
}

/** True when `digest` is `sha256:` followed by 64 lowercase hex digits. */
export function isValidDigest(digest: string): boolean {
  return typeof digest === 'string' && DIGEST.test(digest);
}

/** Why `host` is not a registry host (`host` or `host:port`), or undefined when it is one. */
export function registryHostProblem(host: string): string | undefined {
  const port = /:(\d+)$/.exec(host)?.[1];
  if (!REGISTRY.test(host) || (port !== undefined && (Number(port) < 1 || Number(port) > 65535)))
    return 'is not a registry host; use host or host:port (port 1-65535), e.g. 127.0.0.1:5000';
  return undefined;
}

/**
 * Why `value` must not be handed to a tool as one argument, or undefined when it may: empty,
 * whitespace, control characters, shell metacharacters, or a leading `-` (a tool would read an option).
 */
export function safeTokenProblem(value: string): string | undefined {
  if (value.length === 0) return 'is empty; set it to a non-empty value';
  if (value.length > 512) return 'is longer than 512 characters; shorten it';
  if (CONTROL.test(value) || /\s/.test(value)) return 'contains whitespace or control characters; remove them';
  if (SHELL_META.test(value)) return 'contains shell metacharacters; use only letters, digits and . _ - / : @ + = ,';
  if (value.startsWith('-'))
    return 'starts with "-" and would be read as a command-line option; remove the leading "-"';
  return undefined;
}

/**
 * Guard for a free-form token (branch name, git ref, label value) that will be passed to a tool
 * ({@link safeTokenProblem}). Returns the value unchanged when it is safe.
 *
 * @throws PermanentError InvalidInput naming `field` and the value.
 */
export function assertSafeToken(value: string, field: string): string {
  const problem = typeof value === 'string' ? safeTokenProblem(value) : 'is not a string; set it to a text value';
  if (problem) throw invalidValue(field, value, problem);
  return value;
}

/** Git transports a recipe location may name; git's own `GIT_ALLOW_PROTOCOL` is set to the same list. */
export const GIT_PROTOCOLS = ['https', 'http', 'ssh', 'git', 'file'] as const;

/**
 * Why git must not be handed `location` as a recipe repository, or undefined when it may.
 *
 * A location is a URL with one of {@link GIT_PROTOCOLS}, an scp-like `user@host:path`, or a local
 * path, and a safe token ({@link safeTokenProblem}). Refused: a leading `-` (git would read an
 * option such as `--upload-pack=…`), git's remote-helper form `<transport>::<address>` (`ext::`
 * runs any command, `fd::` reads descriptors) and any other URL scheme.
 */
export function gitLocationProblem(location: string): string | undefined {
  if (location.startsWith('-')) return 'starts with "-", so git would read it as an option';
  if (location.includes('::'))
    return 'uses git\'s "<transport>::<address>" remote-helper form (ext:: and fd:: run commands); give an https://, ssh:// or file:// URL or a path';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(location)?.[1]?.toLowerCase();
  if (scheme !== undefined && !(GIT_PROTOCOLS as readonly string[]).includes(scheme))
    return `uses the "${scheme}" transport; use one of ${GIT_PROTOCOLS.map((p) => `${p}://`).join(', ')}, user@host:path or a path`;
  return safeTokenProblem(location);
}

/**
 * Why `ref` is not a git branch, tag or commit name git would take as given, or undefined: a safe
 * token ({@link safeTokenProblem}) that also follows git's ref-name rules (`git check-ref-format`).
 */
export function gitRefProblem(ref: string): string | undefined {
  const unsafe = safeTokenProblem(ref);
  if (unsafe) return unsafe;
  if (/\.\.|@\{|\/\/|^[/.]|\/\.|[/.]$|\.lock$|[:[]/.test(ref) || ref === '@')
    return 'is not a git ref name (no "..", "@{", "//", ":", "[", no leading "/" or ".", no trailing "/", "." or ".lock"); give a branch, tag or commit such as main';
  return undefined;
}

/** Parses a reference, or says why it is not one (the text after the quoted value). */
function readImageRef(ref: string): ImageRef | { problem: string } {
  const no = (problem: string) => ({ problem });
  if (typeof ref !== 'string' || ref.length === 0)
    return no('is empty; set it to an image reference such as ghcr.io/owner/name:tag');
  if (CONTROL.test(ref) || /\s/.test(ref)) return no('contains whitespace or control characters; remove them');
  if (SHELL_META.test(ref))
    return no('contains shell metacharacters; use a plain reference such as ghcr.io/owner/name:tag');
  if (/^[a-z-]+:\/\//i.test(ref))
    return no(
      'has a transport or URL prefix; drop the prefix (e.g. docker://) and give registry/repository[:tag][@digest]',
    );

  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isValidDigest(digest))
      return no(`has an invalid digest ${quoteValue(digest)}; use sha256: followed by 64 lowercase hex digits`);
  }

  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > lastSlash) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!isValidTag(tag)) return no(`has an invalid tag ${quoteValue(tag)}; ${TAG_GRAMMAR}`);
  }

  const parts = rest.split('/');
  let registry = 'docker.io';
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
    if (registryHostProblem(registry))
      return no(`has an invalid registry ${quoteValue(registry)}; use host or host:port`);
  }
  if (parts.length === 0 || parts.some((p) => p.length === 0))
    return no('has an empty repository path component; use registry/repository[:tag][@digest]');
  for (const p of parts) {
    if (/[A-Z]/.test(p))
      return no(`has uppercase letters in repository component ${quoteValue(p)}; repository names must be lowercase`);
    if (!PATH_COMPONENT.test(p))
      return no(
        `has an invalid repository component ${quoteValue(p)}; use lowercase letters and digits separated by . _ __ or -`,
      );
  }
  if (registry === 'docker.io' && parts.length === 1) parts.unshift('library');
  const repository = parts.join('/');
  const name = `${registry}/${repository}`;
  if (name.length > MAX_NAME_LENGTH)
    return no(`is longer than ${MAX_NAME_LENGTH} characters without tag and digest; shorten the repository path`);

  const out: ImageRef = { registry, repository, name };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** Why `ref` is not an image reference, or undefined when it is one ({@link parseImageRef}'s rules). */
export function imageRefProblem(ref: string): string | undefined {
  const read = readImageRef(ref);
  return 'problem' in read ? read.problem : undefined;
}

/**
 * Parse and validate an image reference such as `ghcr.io/ublue-os/kinoite-main:43`,
 * `localhost:5000/x@sha256:…` or `fedora:43`.
 *
 * The registry is the first path component when it contains `.` or `:` or is `localhost`,
 * otherwise `docker.io` (and a single-component repository becomes `library/<name>`).
 *
 * @param field Name of the input being parsed, used in error messages (default `image reference`).
 * @throws PermanentError InvalidInput naming the field and the bad value.
 */
export function parseImageRef(ref: string, field = 'image reference'): ImageRef {
  const read = readImageRef(ref);
  if ('problem' in read) throw invalidValue(field, ref, read.problem);
  return read;
}

/** The canonical string form of a parsed reference: `name[:tag][@digest]`. */
export function formatRef(ref: ImageRef): string {
  return `${ref.name}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/**
 * A by-digest reference `name@digest`.
 *
 * @throws PermanentError InvalidInput when the digest is malformed or the name is unsafe.
 */
export function digestRef(name: string, digest: string): string {
  if (!isValidDigest(digest))
    throw invalidValue('digest', digest, 'is not a sha256 digest; use sha256: followed by 64 lowercase hex digits');
  assertSafeToken(name, 'image name');
  return `${name}@${digest}`;
}

/**
 * A by-tag reference `name:tag`.
 *
 * @throws PermanentError InvalidInput when the tag is not a valid OCI tag or the name is unsafe.
 */
export function tagRef(name: string, tag: string): string {
  if (!isValidTag(tag)) throw invalidValue('tag', tag, `is not a valid OCI tag; ${TAG_GRAMMAR}`);
  assertSafeToken(name, 'image name');
  return `${name}:${tag}`;
}

/**
 * The source tag of an input reference, as the original derived it (§5.2): the part after the
 * last `:` when that part contains no `/` or `@`; empty for digest references and untagged ones.
 */
export function sourceTagOf(ref: string): string {
  if (ref.includes('@')) return '';
  const i = ref.lastIndexOf(':');
  if (i < 0) return '';
  const tail = ref.slice(i + 1);
  return tail.includes('/') ? '' : tail;
}
