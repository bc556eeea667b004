/**
 * Regenerates docs/benchmarks.md in one command: runs every benchmark section (scripts/bench.ts,
 * and when present scripts/bench-noop.ts, bench-growth.ts, bench-startup.ts, then the slow real-kernel
 * ones, bench-akmods.ts and bench-boot.ts) and writes the doc from a fixed header plus the sections.
 *
 *   npm run bench [-- --reuse slow|all|KEY,KEY] [--quick] [--fresh] [--out FILE]
 *
 * --reuse LIST  put the last saved result of these sections in the doc instead of measuring them
 *               again (`slow` = akmods,boot; `all` = every section); a section never measured on
 *               this machine is measured anyway. The doc says which sections were reused, from when.
 * --only LIST   run only these sections (the others are listed in the doc as not run)
 * --quick       the registry section's --quick (skips its podman/buildah sides)
 * --fresh       the registry section's --fresh (a new world)
 * --out FILE    write somewhere else than docs/benchmarks.md
 *
 * Every measured section is saved under .state/bench/<key>.json (scripts/bench-results.ts). Exits 1
 * when a section failed (the doc then shows its last saved result, or says that it failed).
 */
import { writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { sectionMarkdown, type BenchSection } from './bench-section.ts';
import { isMain, loadSection, repoRoot, saveSection, thisMachine, type SavedSection } from './bench-results.ts';

/** One section bench-all knows how to run. */
interface SectionSource {
  /** Key of the saved result (.state/bench/<key>.json). */
  key: string;
  /** Script file under scripts/. */
  file: string;
  /** Exported function that returns the section. */
  exportName: string;
  /** Takes minutes (real OpenZFS builds or boots): reused by `--reuse slow`. */
  slow?: boolean;
}

/** Every section, in the order of the doc. */
export const SECTIONS: SectionSource[] = [
  { key: 'registry', file: 'bench.ts', exportName: 'runRegistryBench' },
  { key: 'noop', file: 'bench-noop.ts', exportName: 'runNoopBench' },
  { key: 'growth', file: 'bench-growth.ts', exportName: 'runGrowthBench' },
  { key: 'startup', file: 'bench-startup.ts', exportName: 'runStartupBench' },
  { key: 'akmods', file: 'bench-akmods.ts', exportName: 'runAkmodsBench', slow: true },
  { key: 'boot', file: 'bench-boot.ts', exportName: 'runBootBench', slow: true },
  { key: 'build-hosts', file: 'bench-build-hosts.ts', exportName: 'runBuildHostsBench' },
  { key: 'streams', file: 'bench-streams.ts', exportName: 'runStreamsBench' },
];

/** Options of {@link benchAll}. */
export interface BenchAllOptions {
  /** Section keys whose last saved result is used instead of a new measurement. */
  reuse: Set<string>;
  /** Only these section keys (the others are listed as not run). @default every section */
  only?: Set<string>;
  /** Passed to the registry section. */
  quick?: boolean;
  /** Passed to the registry section. */
  fresh?: boolean;
  /** The doc to write. @default docs/benchmarks.md */
  out?: string;
  log?: (line: string) => void;
}

/** What happened to one section in this invocation. */
interface Outcome {
  source: SectionSource;
  saved?: SavedSection;
  /** measured now, reused from an earlier run, missing script, or failed. */
  how: 'measured' | 'reused' | 'missing' | 'failed' | 'not run';
  note?: string;
}

/** Runs (or reuses) every section and writes the doc; returns false when a section failed. */
export async function benchAll(opts: BenchAllOptions): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.error(l));
  const outcomes: Outcome[] = [];
  for (const source of SECTIONS) {
    const path = join(repoRoot, 'scripts', source.file);
    if (opts.only && !opts.only.has(source.key)) {
      outcomes.push({ source, how: 'not run', note: 'not run in this invocation (`--only`)' });
      continue;
    }
    if (!existsSync(path)) {
      outcomes.push({ source, how: 'missing', note: `scripts/${source.file} does not exist yet` });
      continue;
    }
    if (opts.reuse.has(source.key)) {
      const saved = await loadSection(source.key);
      if (saved) {
        log(`bench-all: ${source.key}: reusing the result of ${saved.measuredAt}`);
        outcomes.push({ source, saved, how: 'reused' });
        continue;
      }
      log(`bench-all: ${source.key}: no saved result on this machine, measuring it`);
    }
    try {
      const mod = (await import(path)) as Record<string, unknown>;
      const run = mod[source.exportName];
      if (typeof run !== 'function') {
        outcomes.push({ source, how: 'missing', note: `scripts/${source.file} exports no ${source.exportName}()` });
        continue;
      }
      log(`bench-all: ${source.key}: measuring (scripts/${source.file})…`);
      const args = source.key === 'registry' ? [{ quick: opts.quick, fresh: opts.fresh, log }] : [];
      const section = (await (run as (...a: unknown[]) => Promise<BenchSection>)(...args)) satisfies BenchSection;
      outcomes.push({ source, saved: await saveSection(source.key, section), how: 'measured' });
    } catch (err) {
      const message = (err as Error).message ?? String(err);
      log(`bench-all: ${source.key} failed: ${(err as Error).stack ?? message}`);
      const saved = await loadSection(source.key);
      outcomes.push({
        source,
        saved,
        how: 'failed',
        note: `measuring it failed on ${new Date().toISOString().slice(0, 10)} (${message.split('\n')[0]})`,
      });
    }
  }
  await writeFile(opts.out ?? join(repoRoot, 'docs', 'benchmarks.md'), render(outcomes, opts));
  return outcomes.every((o) => o.how !== 'failed');
}

function when(iso: string): string {
  return `${iso.slice(0, 16).replace('T', ' ')} UTC`;
}

/** The doc: fixed header, then every section. */
function render(outcomes: Outcome[], opts: BenchAllOptions): string {
  const m = thisMachine();
  const now = new Date().toISOString();
  const status = outcomes.map((o) => {
    const name = `\`${o.source.key}\` (\`scripts/${o.source.file}\`)`;
    if (o.how === 'measured') return `- ${name}: measured in this run, ${when(o.saved!.measuredAt)}.`;
    if (o.how === 'reused')
      return `- ${name}: **reused** from ${o.saved!.origin ? `${o.saved!.origin}, measured` : 'the run of'} ${when(o.saved!.measuredAt)} (${o.saved!.machine.cores} cores, ${o.saved!.machine.ramGiB} GiB).`;
    if (o.how === 'missing' || o.how === 'not run') return `- ${name}: not in this doc: ${o.note}.`;
    return `- ${name}: ${o.note}${o.saved ? `; the doc shows the result of ${when(o.saved.measuredAt)}` : ''}.`;
  });
  const header = `# Benchmarks

This file is generated: \`npm run bench\` (\`scripts/bench-all.ts\`) runs every benchmark section and
writes it; do not edit it by hand. Each section compares the pipeline with the original pipeline
(the GitHub Actions workflows described in the reference) **as the original really runs**: its own
commands (podman, buildah, skopeo, cosign), on the runners it uses (a persistent self-hosted runner
for building, a new GitHub-hosted VM for promotion), inside one registry, in the same run and on the
same world as ours. Every original side says, in one line, why it is the original's way. These
machines are noisy, so compare the ratios, not the absolute times; no test asserts on them.

## Running it

\`\`\`sh
npm run bench                          # every section (the real-kernel ones take about 25 minutes from nothing)
npm run bench -- --reuse slow          # reuse the last saved akmods and boot sections (said below, with their date)
npm run bench -- --reuse all           # rewrite the doc from the saved results only (sections never measured are run)
npm run bench -- --quick               # the registry section without its podman/buildah sides
npm run bench -- --only registry,boot  # some sections only (the others are listed as not run)
node --import tsx scripts/bench.ts     # one section on its own (each script also runs standalone)
\`\`\`

Each section's result is saved as JSON under \`.state/bench/\`, which is what \`--reuse\` reads.

## This run

Generated ${when(now)} on ${m.cores} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}), ${m.ramGiB} GiB RAM${opts.quick ? ', registry section with `--quick`' : ''}.

${status.join('\n')}
`;
  const sections = outcomes
    .filter((o) => o.saved)
    .map((o) => {
      const tag =
        o.how === 'reused' || o.how === 'failed'
          ? `\n_Reused: measured ${when(o.saved!.measuredAt)}${o.saved!.origin ? ` (${o.saved!.origin})` : ''}, not in this run._\n`
          : '';
      const md = sectionMarkdown(o.saved!.section);
      // The reuse note goes right under the section heading.
      const [heading, ...rest] = md.split('\n');
      return [heading, tag, ...rest].join('\n');
    });
  return `${[header, ...sections]
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim()}\n`;
}

if (isMain(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const keys = (flag: string): Set<string> | undefined => {
    const value = option(flag);
    if (value === undefined) return undefined;
    const out = new Set<string>();
    for (const r of value.split(',').filter(Boolean)) {
      if (r === 'slow') SECTIONS.filter((s) => s.slow).forEach((s) => out.add(s.key));
      else if (r === 'all') SECTIONS.forEach((s) => out.add(s.key));
      else if (SECTIONS.some((s) => s.key === r)) out.add(r);
      else {
        console.error(`${flag}: unknown section "${r}"; use slow, all or ${SECTIONS.map((s) => s.key).join(', ')}`);
        process.exit(2);
      }
    }
    return out;
  };
  benchAll({
    reuse: keys('--reuse') ?? new Set(),
    only: keys('--only'),
    quick: args.includes('--quick'),
    fresh: args.includes('--fresh'),
    out: option('--out'),
  }).then(
    (ok) => process.exit(ok ? 0 : 1),
    (err: unknown) => {
      console.error(`bench-all failed: ${(err as Error).stack ?? String(err)}`);
      process.exit(1);
    },
  );
}
