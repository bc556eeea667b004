/**
 * Streaming scan of an image's layer tarballs: the final visible state of kernel directories,
 * ZFS commands and ZFS module files, following OCI whiteouts. The I/O code feeds it tar entries
 * layer by layer, in manifest order; nothing is extracted. For the ZFS modules (`zfs.ko`,
 * `spl.ko`) the caller also hands over the file content, and the scan keeps only the kernel
 * release each was built for (from `.modinfo`), so the smoke test can tell a module built for
 * another kernel from the right one.
 */
import { naturalCompare, sortKernels } from './kernels.ts';
import { readModinfo, vermagicRelease } from './modinfo.ts';

/** One tar member as the scan needs it. */
export interface TarEntry {
  /** Member name as stored in the tar (may start with `./` or `/`). */
  name: string;
  type: 'file' | 'link' | 'symlink' | 'directory' | 'other';
  /** Target of a hard link (a member name of the same tar) or of a symlink; only read for ZFS modules. */
  linkname?: string;
}

/**
 * Content of a ZFS module file handed to {@link LayerScan.entry}: the bytes as stored in the
 * layer, or the fact that the reader left them unread because they exceed its size limit.
 */
export type ModuleContent = { bytes: Uint8Array } | { tooLarge: true; size: number; limit: number };

/** The kernel build a ZFS module was made for, read from its `.modinfo`. */
export interface ModuleBuild {
  /** Path of the module file in the image, e.g. `usr/lib/modules/6.18.9-200.fc43.x86_64/extra/zfs/zfs.ko`. */
  path: string;
  /** The module's full `vermagic`, e.g. `6.18.9-200.fc43.x86_64 SMP preempt mod_unload`. */
  vermagic: string;
  /** The module's `version` (the OpenZFS version), when its `.modinfo` has one. */
  version?: string;
}

/** The checked ZFS modules of one kernel, as the passing smoke verdict reports them. */
export interface KernelModules {
  /** The kernel's `zfs.ko` (the first by path if several forms are visible). */
  zfs: ModuleBuild;
  /** The kernel's `spl.ko`, when the image has one. */
  spl?: ModuleBuild;
}

/** One ZFS module that fails the vermagic check. */
export interface ModuleProblem {
  /** Kernel whose module directory holds the file. */
  kernel: string;
  /** Path of the module file in the image. */
  path: string;
  /** Kernel release the module was built for, when it is not `kernel` (reason `wrong-kernel`). */
  builtFor?: string;
  /** Why the module's `.modinfo` could not be read (reason `unreadable-module`). */
  unreadable?: string;
}

/** Outcome of the smoke check over the scanned layers (original §5.4 steps 4-6, plus the vermagic check). */
export type SmokeResult =
  | { ok: true; kernels: string[]; commands: string[]; modules: Record<string, KernelModules> }
  | {
      ok: false;
      /**
       * `wrong-kernel` when any checked module was built for another kernel, otherwise
       * `unreadable-module` when one could not be checked; `moduleProblems` lists them all.
       */
      reason: 'missing-command' | 'no-payload' | 'missing-module' | 'wrong-kernel' | 'unreadable-module';
      missingCommand?: string;
      missingKernels?: string[];
      moduleProblems?: ModuleProblem[];
      message: string;
    };

/** Options for {@link LayerScan}. */
export interface LayerScanOptions {
  /**
   * Kernels that must each have a ZFS module. When absent or empty, the kernels that have a
   * module payload are used (and at least one is required).
   */
  expectedKernels?: readonly string[];
  /**
   * Decompresses a gzip module (`zfs.ko.gz`) for the vermagic check. Injected so this module
   * stays free of Node imports; the activity passes `node:zlib`'s `gunzipSync` with an output
   * limit. Without it a `.ko.gz` module counts as unreadable.
   * @default undefined
   */
  gunzip?: (bytes: Uint8Array) => Uint8Array;
}

/** The command paths that count (only `usr/` forms: on Fedora `/bin` and `/sbin` are symlinks). */
export const COMMAND_PATHS = ['usr/sbin/zfs', 'usr/bin/zfs', 'usr/sbin/zpool', 'usr/bin/zpool'] as const;
const COMMAND_NAMES = ['zfs', 'zpool'] as const;

const MODULES_ROOT = /^((?:usr\/)?lib\/modules)\/([^/]+)(?:\/(.*))?$/;
const MODULE_TAIL = /^extra\/zfs\/zfs\.ko(?:\.[A-Za-z0-9]+)?$/;
/** The module files whose vermagic is checked; group 1 is the module, group 2 the compression suffix. */
const CHECKED_TAIL = /^extra\/zfs\/(zfs|spl)\.ko(?:\.([A-Za-z0-9]+))?$/;
/** Symlink hops followed from one module file to another before giving up (a loop, most likely). */
const MAX_SYMLINK_HOPS = 8;
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

/**
 * True when the tar member `name` is a ZFS module whose content {@link LayerScan.entry} needs for
 * the vermagic check: `(usr/)lib/modules/<kernel>/extra/zfs/{zfs,spl}.ko`, plain or `.gz`. The
 * layer reader uses it to choose which members to read into memory; `.xz` and `.zst` modules are
 * not read because they cannot be checked anyway.
 */
export function wantsModuleContent(name: string): boolean {
  const path = normalizeTarPath(name);
  const tail = path === undefined ? undefined : MODULES_ROOT.exec(path)?.[3];
  const m = tail === undefined ? null : CHECKED_TAIL.exec(tail);
  return m !== null && (m[2] === undefined || m[2] === 'gz');
}

/** What the scan knows of a checked module file: its build, why it has none, or where it points. */
type ModuleState =
  { build: Omit<ModuleBuild, 'path'> & { release: string } } | { unreadable: string } | { symlink: string };

interface Live {
  /** Index of the layer that last wrote this path. */
  layer: number;
  /** Regular file, hard link or symlink: counts as payload. */
  payload: boolean;
  /** For a ZFS module file whose vermagic is checked (`CHECKED_TAIL`). */
  module?: ModuleState;
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
  private readonly gunzip: LayerScanOptions['gunzip'];
  private layer = -1;
  /** Keyed by kernel directory path, e.g. `usr/lib/modules/6.18.16-200.fc43.x86_64`. */
  private readonly groups = new Map<string, KernelGroup>();
  private readonly commands = new Map<string, Live>();
  /** Every tracked directory and ancestor of a tracked path (a superset filter; never shrinks). */
  private readonly knownDirs = new Set<string>();

  constructor(opts: LayerScanOptions = {}) {
    const e = opts.expectedKernels;
    this.expected = e && e.length > 0 ? sortKernels(e) : undefined;
    this.gunzip = opts.gunzip;
  }

  /** Start the next layer (layers must be fed bottom-up, in manifest order). */
  beginLayer(): void {
    this.layer++;
  }

  /**
   * Feed one tar member of the current layer. Unrelated paths are ignored cheaply. `content` is
   * needed for the members {@link wantsModuleContent} selects: it is parsed at once and only the
   * module's vermagic and version are kept. A checked module fed without content is unreadable.
   */
  entry(e: TarEntry, content?: ModuleContent): void {
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
    this.add(path, e.type, e, content);
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
   * kernel to check, a ZFS module for each, and every visible `extra/zfs/zfs.ko*` and `spl.ko*`
   * of those kernels built for that very kernel (the release in its vermagic). A missing
   * `spl.ko` is not checked here (module loading at boot catches it); a module that cannot be read
   * fails. `ref` (the candidate's digest reference) is used in messages.
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
    const problems: ModuleProblem[] = [];
    const modules: Record<string, KernelModules> = {};
    for (const kernel of required) {
      const found: { zfs?: ModuleBuild; spl?: ModuleBuild } = {};
      for (const [path, state, which] of this.checkedModules(kernel)) {
        const resolved = this.resolve(path, state);
        if ('unreadable' in resolved) {
          problems.push({ kernel, path, unreadable: resolved.unreadable });
        } else if (resolved.build.release !== kernel) {
          problems.push({ kernel, path, builtFor: resolved.build.release });
        } else {
          const { vermagic, version } = resolved.build;
          found[which] ??= version === undefined ? { path, vermagic } : { path, vermagic, version };
        }
      }
      // Every required kernel has a visible zfs.ko (checked above), so with no problem it was read.
      if (found.zfs) modules[kernel] = found.spl ? { zfs: found.zfs, spl: found.spl } : { zfs: found.zfs };
    }
    if (problems.length > 0) {
      const wrong = problems.some((p) => p.builtFor !== undefined);
      const what = problems.map((p) =>
        p.builtFor !== undefined
          ? `${p.path} was built for kernel ${p.builtFor}, not ${p.kernel}`
          : `cannot check ${p.path}: ${p.unreadable}`,
      );
      const next = wrong
        ? 'The ZFS modules do not match the kernels they are installed for; rebuild the akmods for these kernels.'
        : 'Install the ZFS modules uncompressed (or gzip-compressed) and stripped of debug info so their kernel can be checked.';
      return {
        ok: false,
        reason: wrong ? 'wrong-kernel' : 'unreadable-module',
        moduleProblems: problems,
        message: `Candidate image ${ref}: ${what.join('; ')}. ${next}`,
      };
    }
    return { ok: true, kernels: [...required], commands, modules };
  }

  /** Visible checked module files of `kernel` (zfs before spl, then by path), under either modules root. */
  private checkedModules(kernel: string): Array<[path: string, state: ModuleState | undefined, which: 'zfs' | 'spl']> {
    const out: Array<[string, ModuleState | undefined, 'zfs' | 'spl']> = [];
    for (const [root, g] of this.groups) {
      if (g.kernel !== kernel) continue;
      for (const [p, live] of g.entries) {
        if (!live.payload || p.length <= root.length + 1) continue;
        const m = CHECKED_TAIL.exec(p.slice(root.length + 1));
        if (m) out.push([p, live.module, m[1] as 'zfs' | 'spl']);
      }
    }
    return out.sort(([a, , x], [b, , y]) => (x === y ? (a < b ? -1 : a > b ? 1 : 0) : x === 'zfs' ? -1 : 1));
  }

  /**
   * The build a module file stands for, following a symlink to another visible checked module
   * file of the final image (relative or absolute target). Symlinks elsewhere are not followed:
   * the scan never saw the content there.
   */
  private resolve(path: string, state: ModuleState | undefined): Exclude<ModuleState, { symlink: string }> {
    let at = path;
    let s = state;
    for (let hop = 0; hop <= MAX_SYMLINK_HOPS; hop++) {
      if (s === undefined)
        return { unreadable: 'its content was not given to the scan (the layer reader was not asked for it)' };
      if (!('symlink' in s))
        return hop === 0 || 'build' in s
          ? s
          : { unreadable: `it is a symlink to ${at}, which is unreadable: ${s.unreadable}` };
      const target = resolveLink(at, s.symlink);
      const live = target === undefined ? undefined : this.live(target);
      if (target === undefined || !live?.module) {
        return {
          unreadable: `it is a symlink to ${s.symlink}, which is not a ZFS module file of the image; the smoke test reads only regular files`,
        };
      }
      at = target;
      s = live.module;
    }
    return { unreadable: `it is a symlink chain longer than ${MAX_SYMLINK_HOPS} hops (a loop?)` };
  }

  /** The live entry at a normalised path, if it lies under a kernel directory. */
  private live(path: string): Live | undefined {
    const m = MODULES_ROOT.exec(path);
    return m ? this.groups.get(`${m[1]}/${m[2]}`)?.entries.get(path) : undefined;
  }

  /**
   * What a checked module entry is (`tail` is its path below the kernel directory, matching
   * `CHECKED_TAIL`). The bytes are parsed here and dropped, so the scan's memory does not grow
   * with module size.
   */
  private moduleState(tail: string, e: TarEntry, content: ModuleContent | undefined): ModuleState {
    if (e.type === 'symlink') return { symlink: e.linkname ?? '' };
    if (e.type === 'link') {
      // A hard link names an earlier member of the same tar; only one read as a module helps.
      const target = e.linkname === undefined ? undefined : normalizeTarPath(e.linkname);
      const state = target === undefined ? undefined : this.live(target)?.module;
      if (state && !('symlink' in state)) return state;
      return {
        unreadable: `it is a hard link to ${e.linkname ?? '(no target)'}, which is not a ZFS module file the scan read`,
      };
    }
    const ext = CHECKED_TAIL.exec(tail)?.[2];
    if (ext !== undefined && ext !== 'gz')
      return {
        unreadable: `cannot check the vermagic of a .${ext}-compressed module: not supported (only .ko and .ko.gz are read)`,
      };
    if (content === undefined)
      return { unreadable: 'its content was not given to the scan (the layer reader was not asked for it)' };
    if ('tooLarge' in content) {
      return {
        unreadable: `it is ${content.size} bytes, over the ${content.limit}-byte limit of what the smoke test reads into memory (is it built with debug info?)`,
      };
    }
    let bytes = content.bytes;
    if (ext === 'gz') {
      if (!this.gunzip) return { unreadable: 'it is gzip-compressed and this scan was given no gunzip' };
      try {
        bytes = this.gunzip(bytes);
      } catch (err) {
        return { unreadable: `it does not decompress as gzip: ${(err as Error).message}` };
      }
    }
    let info: Record<string, string>;
    try {
      info = readModinfo(bytes);
    } catch (err) {
      return { unreadable: (err as Error).message };
    }
    const vermagic = info['vermagic'];
    if (vermagic === undefined || vermagicRelease(vermagic) === '')
      return { unreadable: 'its .modinfo has no vermagic' };
    const version = info['version'];
    return {
      build:
        version === undefined
          ? { vermagic, release: vermagicRelease(vermagic) }
          : { vermagic, release: vermagicRelease(vermagic), version },
    };
  }

  private add(path: string, type: TarEntry['type'], e?: TarEntry, content?: ModuleContent): void {
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
    if (live.payload && e && m[3] !== undefined && CHECKED_TAIL.test(m[3]))
      live.module = this.moduleState(m[3], e, content);
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

/**
 * The normalised path a symlink at `from` with target `target` points to (`..` resolved, never
 * above the root); undefined for an empty target.
 */
function resolveLink(from: string, target: string): string | undefined {
  const out = target.startsWith('/') ? [] : from.split('/').slice(0, -1);
  for (const seg of target.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return out.length === 0 ? undefined : out.join('/');
}
