/**
 * Streaming scan of an image's layer tarballs: the final visible state of kernel directories,
 * ZFS commands and ZFS module files, following OCI whiteouts. The I/O code feeds it tar entries
 * layer by layer, in manifest order; nothing is extracted.
 */
import { naturalCompare, sortKernels } from './kernels.ts';

/** One tar member as the scan needs it. */
export interface TarEntry {
  /** Member name as stored in the tar (may start with `./` or `/`). */
  name: string;
  type: 'file' | 'link' | 'symlink' | 'directory' | 'other';
}

/** Outcome of the smoke check over the scanned layers (original §5.4 steps 4-6). */
export type SmokeResult =
  | { ok: true; kernels: string[]; commands: string[] }
  | {
      ok: false;
      reason: 'missing-command' | 'no-payload' | 'missing-module';
      missingCommand?: string;
      missingKernels?: string[];
      message: string;
    };

/** Options for {@link LayerScan}. */
export interface LayerScanOptions {
  /**
   * Kernels that must each have a ZFS module. When absent or empty, the kernels that have a
   * module payload are used (and at least one is required).
   */
  expectedKernels?: readonly string[];
}

/** The command paths that count (only `usr/` forms: on Fedora `/bin` and `/sbin` are symlinks). */
export const COMMAND_PATHS = ['usr/sbin/zfs', 'usr/bin/zfs', 'usr/sbin/zpool', 'usr/bin/zpool'] as const;
const COMMAND_NAMES = ['zfs', 'zpool'] as const;

const MODULES_ROOT = /^((?:usr\/)?lib\/modules)\/([^/]+)(?:\/(.*))?$/;
const MODULE_TAIL = /^extra\/zfs\/zfs\.ko(?:\.[A-Za-z0-9]+)?$/;
const OPAQUE = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';

/**
 * Normalise a tar member name: strip leading `./` and `/`, collapse `//` and `.` segments and a
 * trailing `/`. Returns undefined for names containing `..` (never trusted) or naming the root.
 */
export function normalizeTarPath(name: string): string | undefined {
  const out: string[] = [];
  for (const seg of String(name).split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') return undefined;
    out.push(seg);
  }
  return out.length === 0 ? undefined : out.join('/');
}

interface Live {
  /** Index of the layer that last wrote this path. */
  layer: number;
  /** Regular file, hard link or symlink: counts as payload. */
  payload: boolean;
}

interface KernelGroup {
  kernel: string;
  /** Live paths at or under the kernel directory (full normalised paths). */
  entries: Map<string, Live>;
}

/** True when `path` is `prefix` itself or lies under it; an empty prefix is the root. */
function atOrUnder(path: string, prefix: string): boolean {
  return prefix === '' || path === prefix || path.startsWith(`${prefix}/`);
}

/** True when `path` lies strictly under `dir`; an empty dir is the root. */
function under(path: string, dir: string): boolean {
  return dir === '' || path.startsWith(`${dir}/`);
}

/**
 * Layer scan state machine. Call `beginLayer()` before each layer's entries, `entry()` for each
 * tar member in order, then read `kernels()` or `smoke(ref)`.
 *
 * Whiteouts follow the OCI image spec: `<dir>/.wh.<name>` hides `<dir>/<name>` and everything
 * under it, and `<dir>/.wh..wh..opq` hides everything under `<dir>/`; both apply only to what
 * earlier layers wrote (entries of the same layer survive, whatever their order in the tar).
 * Unlike the original, whiting out a kernel directory removes that kernel and its modules.
 * A non-directory entry replacing a directory hides what lower layers had under it, as overlayfs does.
 */
export class LayerScan {
  private readonly expected: string[] | undefined;
  private layer = -1;
  /** Keyed by kernel directory path, e.g. `usr/lib/modules/6.18.16-200.fc43.x86_64`. */
  private readonly groups = new Map<string, KernelGroup>();
  private readonly commands = new Map<string, Live>();
  /** Every tracked directory and ancestor of a tracked path (a superset filter; never shrinks). */
  private readonly knownDirs = new Set<string>();

  constructor(opts: LayerScanOptions = {}) {
    const e = opts.expectedKernels;
    this.expected = e && e.length > 0 ? sortKernels(e) : undefined;
  }

  /** Start the next layer (layers must be fed bottom-up, in manifest order). */
  beginLayer(): void {
    this.layer++;
  }

  /** Feed one tar member of the current layer. Unrelated paths are ignored cheaply. */
  entry(e: TarEntry): void {
    if (this.layer < 0) this.beginLayer();
    const path = normalizeTarPath(e.name);
    if (path === undefined) return;
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    const base = slash < 0 ? path : path.slice(slash + 1);

    if (base.startsWith(WHITEOUT_PREFIX)) {
      if (base === OPAQUE) {
        this.hide(dir, false);
        // The marker implies the directory itself exists in this layer.
        if (dir !== '') this.add(dir, 'directory');
      } else if (!base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) {
        const target = dir === '' ? base.slice(WHITEOUT_PREFIX.length) : `${dir}/${base.slice(WHITEOUT_PREFIX.length)}`;
        this.hide(target, true);
      }
      // Other `.wh..wh.*` names are aufs bookkeeping: never payload, never a whiteout.
      return;
    }
    // Only a path that is an ancestor of something tracked can hide anything; the set check keeps
    // the common case (hundreds of thousands of unrelated files) O(1).
    if (e.type !== 'directory' && this.knownDirs.has(path)) this.hide(path, true);
    this.add(path, e.type);
  }

  /** Kernels whose directory is visible in the final image, natural-sorted and de-duplicated. */
  kernels(): string[] {
    const out: string[] = [];
    for (const g of this.groups.values()) if (g.entries.size > 0) out.push(g.kernel);
    return sortKernels(out);
  }

  /** Kernels with a visible ZFS module (`extra/zfs/zfs.ko*`), natural-sorted; limited to the expected ones when given. */
  moduleKernels(): string[] {
    const out: string[] = [];
    for (const [root, g] of this.groups) {
      if (this.expected && !this.expected.includes(g.kernel)) continue;
      for (const [p, live] of g.entries) {
        if (live.payload && p.length > root.length + 1 && MODULE_TAIL.test(p.slice(root.length + 1))) {
          out.push(g.kernel);
          break;
        }
      }
    }
    return sortKernels(out);
  }

  /** Visible ZFS command paths, e.g. `usr/sbin/zfs`, sorted. */
  commandPaths(): string[] {
    return [...this.commands.entries()]
      .filter(([, l]) => l.payload)
      .map(([p]) => p)
      .sort();
  }

  /**
   * The smoke verdict: both `zfs` and `zpool` present under `usr/sbin` or `usr/bin`, at least one
   * kernel to check, and a ZFS module for each. `ref` (the candidate's digest reference) is used
   * in messages.
   */
  smoke(ref: string): SmokeResult {
    const commands = this.commandPaths();
    for (const name of [...COMMAND_NAMES].sort()) {
      if (!commands.some((p) => p.endsWith(`/${name}`))) {
        return {
          ok: false,
          reason: 'missing-command',
          missingCommand: name,
          message: `Candidate image ${ref} is missing expected command ${name}`,
        };
      }
    }
    const withModules = this.moduleKernels();
    const required = this.expected ?? withModules;
    if (required.length === 0) {
      return { ok: false, reason: 'no-payload', message: `No ZFS kernel payloads found in candidate image ${ref}` };
    }
    const missing = required.filter((k) => !withModules.includes(k)).sort(naturalCompare);
    if (missing.length > 0) {
      return {
        ok: false,
        reason: 'missing-module',
        missingKernels: missing,
        message: `Candidate image is missing a ZFS module payload for kernels ${missing.join(' ')}: ${ref}`,
      };
    }
    return { ok: true, kernels: [...required], commands };
  }

  private add(path: string, type: TarEntry['type']): void {
    const live: Live = { layer: this.layer, payload: type === 'file' || type === 'link' || type === 'symlink' };
    if ((COMMAND_PATHS as readonly string[]).includes(path)) {
      this.commands.set(path, live);
      this.remember(path, type);
      return;
    }
    const m = MODULES_ROOT.exec(path);
    if (!m) return;
    const kernel = m[2]!;
    // The kernel directory itself counts only as a directory (the original listed directories);
    // anything beneath it proves the directory exists.
    if (m[3] === undefined && type !== 'directory') return;
    const root = `${m[1]}/${kernel}`;
    let g = this.groups.get(root);
    if (!g) {
      g = { kernel, entries: new Map() };
      this.groups.set(root, g);
    }
    g.entries.set(path, live);
    this.remember(path, type);
  }

  private remember(path: string, type: TarEntry['type']): void {
    for (let i = path.indexOf('/'); i >= 0; i = path.indexOf('/', i + 1)) this.knownDirs.add(path.slice(0, i));
    if (type === 'directory') this.knownDirs.add(path);
  }

  /**
   * Drop tracked paths that earlier layers wrote at or under `target` (`self` true) or strictly
   * under it (`self` false). Whole kernel groups outside the target are skipped without a scan.
   */
  private hide(target: string, self: boolean): void {
    const test = self ? (p: string) => atOrUnder(p, target) : (p: string) => under(p, target);
    for (const [p, l] of this.commands) if (l.layer < this.layer && test(p)) this.commands.delete(p);
    for (const [root, g] of this.groups) {
      if (!atOrUnder(root, target) && !under(target, root)) continue;
      for (const [p, l] of g.entries) if (l.layer < this.layer && test(p)) g.entries.delete(p);
      if (g.entries.size === 0) this.groups.delete(root);
    }
  }
}
