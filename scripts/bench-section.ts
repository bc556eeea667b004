/**
 * The contract between the benchmark scripts and `scripts/bench-all.ts`, which regenerates
 * docs/benchmarks.md in one command: every benchmark script exports a `run…` function returning
 * one section, and also runs standalone (printing its section's Markdown).
 */

/** One row: what was measured, ours against the original's way, in the same run. */
export interface BenchRow {
  /** What is measured, e.g. `kernel scan, base already in local storage`. */
  measurement: string;
  /** Our side's cells, already formatted (bytes, requests, seconds…). */
  ours: string;
  /** The original's side's cells, formatted the same way. */
  naive: string;
  /** Ratios naive/ours, formatted (one or more, e.g. `bytes 3.4, time 15.0`). */
  ratios: string;
}

/** One section of docs/benchmarks.md. */
export interface BenchSection {
  /** The `##` heading. */
  title: string;
  /** Markdown before the table: what is measured and, for every naive side, one line saying why it is the original as it really runs. */
  intro: string;
  /** The table (Markdown, with its header). */
  table: string;
  /** Markdown after the table: the machine, the date, notes on reading it. */
  notes?: string;
}

/** Renders a section as Markdown. */
export function sectionMarkdown(s: BenchSection): string {
  return [`## ${s.title}`, '', s.intro.trim(), '', s.table.trim(), '', ...(s.notes ? [s.notes.trim(), ''] : [])].join(
    '\n',
  );
}

/** Renders rows as the usual four-column table. */
export function rowsTable(
  rows: BenchRow[],
  header = ['measurement', 'ours', 'the original', 'ratio (original/ours)'],
): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.measurement} | ${r.ours} | ${r.naive} | ${r.ratios} |`),
  ].join('\n');
}
