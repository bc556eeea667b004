/**
 * Saved benchmark sections: every `run…Bench` result is kept as JSON under .state/bench/, so
 * `scripts/bench-all.ts --reuse` can put the last measurement of a slow section (real akmods
 * builds, booted checks) into docs/benchmarks.md without running it again, and say from when.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sectionMarkdown, type BenchSection } from './bench-section.ts';

/** The machine a section was measured on. */
export interface Machine {
  cores: number;
  /** Total memory, GiB (rounded). */
  ramGiB: number;
}

/** A section as saved: what was measured, when, where. */
export interface SavedSection {
  /** Short key (`registry`, `akmods`, `boot`…), also the file name. */
  key: string;
  /** ISO time the measurement finished. */
  measuredAt: string;
  machine: Machine;
  section: BenchSection;
  /** Where the result came from when no script run on this machine saved it (e.g. carried over from a hand-written doc). */
  origin?: string;
}

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/** Folder of the saved sections. */
export const resultsDir = join(repoRoot, '.state', 'bench');

/** This machine's cores and memory. */
export function thisMachine(): Machine {
  return { cores: cpus().length, ramGiB: Math.round(totalmem() / 1024 ** 3) };
}

/** Saves a freshly measured section; returns what was saved. */
export async function saveSection(key: string, section: BenchSection): Promise<SavedSection> {
  const saved: SavedSection = { key, measuredAt: new Date().toISOString(), machine: thisMachine(), section };
  await mkdir(resultsDir, { recursive: true });
  await writeFile(join(resultsDir, `${key}.json`), `${JSON.stringify(saved, null, 2)}\n`);
  return saved;
}

/** The last saved result of a section, or undefined when it was never measured here. */
export async function loadSection(key: string): Promise<SavedSection | undefined> {
  const text = await readFile(join(resultsDir, `${key}.json`), 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as SavedSection);
}

/** Whether the module with this `import.meta.url` is the script node was started with. */
export function isMain(moduleUrl: string): boolean {
  return process.argv[1] !== undefined && moduleUrl === pathToFileURL(process.argv[1]).href;
}

/**
 * Standalone entry point of a benchmark script: runs the section, saves it, prints its Markdown
 * (and writes it to test/output/<file>), then exits 0, or 1 with the error.
 */
export function runStandalone(key: string, file: string, run: () => Promise<BenchSection>): void {
  run()
    .then(async (section) => {
      await saveSection(key, section);
      const md = sectionMarkdown(section);
      console.log(md);
      await mkdir(join(repoRoot, 'test', 'output'), { recursive: true });
      await writeFile(join(repoRoot, 'test', 'output', file), md);
      process.exit(0);
    })
    .catch((err: unknown) => {
      console.error(`${key} benchmark failed: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    });
}
