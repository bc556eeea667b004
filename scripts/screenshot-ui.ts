/**
 * Screenshots a Temporal Web UI page with headless Chromium (and optionally saves its rendered DOM),
 * for operators who want a picture of a run or of the workflow list, and for the Web UI test.
 *
 *   node --import tsx scripts/screenshot-ui.ts --url http://127.0.0.1:8233/namespaces/default/workflows \
 *     --out test/output/workflows.png [--dom test/output/workflows.html] [--wait-ms 8000] [--size 1400,900]
 *
 * Chromium is `/usr/bin/chromium` unless CHROMIUM names another binary. Each call uses a fresh
 * profile folder (removed afterwards), so no cookies or cache carry over between screenshots.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';

/** Options of {@link screenshotUi}. */
export interface ScreenshotOptions {
  /** Page to load. */
  url: string;
  /** PNG file to write. */
  out: string;
  /** Where to write the rendered DOM, when wanted. */
  dom?: string;
  /** Virtual time the page gets to load and render (the UI fetches its data client-side). @default 8000 */
  waitMs?: number;
  /** Window size "W,H". @default "1400,900" */
  size?: string;
}

/** The Chromium binary to use: $CHROMIUM, else /usr/bin/chromium, else `chromium` on PATH. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.CHROMIUM) return env.CHROMIUM;
  return existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : 'chromium';
}

/** Flags that keep headless Chromium quiet, offline apart from the page, and free of first-run work. */
function baseFlags(profile: string, opts: ScreenshotOptions): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--disable-quic',
    `--user-data-dir=${profile}`,
    `--window-size=${opts.size ?? '1400,900'}`,
    `--virtual-time-budget=${opts.waitMs ?? 8000}`,
  ];
}

/** Screenshots `url` into `out` (and saves the DOM into `dom`); returns the files written. */
export async function screenshotUi(opts: ScreenshotOptions): Promise<{ png: string; dom?: string }> {
  if (!/^https?:\/\//.test(opts.url)) throw new Error(`--url must be an http(s) address, got "${opts.url}"`);
  const png = resolve(opts.out);
  await mkdir(dirname(png), { recursive: true });
  const chromium = chromiumPath();
  const shot = await mkdtemp(join(tmpdir(), 'kz-chromium-'));
  try {
    const r = await execa(chromium, [...baseFlags(shot, opts), `--screenshot=${png}`, opts.url], {
      reject: false,
      timeout: 120_000,
      stdin: 'ignore',
    });
    if (r.exitCode !== 0 || !existsSync(png)) {
      throw new Error(
        `chromium could not screenshot ${opts.url} (exit ${r.exitCode}): ${r.stderr.split('\n').slice(-5).join('\n')}\nCheck that ${chromium} exists (apt-get install chromium) and that the Web UI is up.`,
      );
    }
  } finally {
    await rm(shot, { recursive: true, force: true });
  }
  if (!opts.dom) return { png };
  const dom = resolve(opts.dom);
  await mkdir(dirname(dom), { recursive: true });
  // A second profile: the screenshot run may still hold the first one's lock while it exits.
  const dump = await mkdtemp(join(tmpdir(), 'kz-chromium-'));
  try {
    const r = await execa(chromium, [...baseFlags(dump, opts), '--dump-dom', opts.url], {
      reject: false,
      timeout: 120_000,
      stdin: 'ignore',
      maxBuffer: 64 * 1024 * 1024,
    });
    if (r.exitCode !== 0)
      throw new Error(
        `chromium could not dump the DOM of ${opts.url} (exit ${r.exitCode}): ${r.stderr.split('\n').slice(-5).join('\n')}`,
      );
    await writeFile(dom, r.stdout);
  } finally {
    await rm(dump, { recursive: true, force: true });
  }
  return { png, dom };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      out: { type: 'string' },
      dom: { type: 'string' },
      'wait-ms': { type: 'string' },
      size: { type: 'string' },
    },
  });
  if (!values.url || !values.out) {
    console.error(
      'usage: node --import tsx scripts/screenshot-ui.ts --url URL --out FILE.png [--dom FILE.html] [--wait-ms 8000] [--size 1400,900]',
    );
    process.exit(2);
  }
  try {
    const r = await screenshotUi({
      url: values.url,
      out: values.out,
      dom: values.dom,
      waitMs: values['wait-ms'] ? Number(values['wait-ms']) : undefined,
      size: values.size,
    });
    console.log(`wrote ${r.png}${r.dom ? ` and ${r.dom}` : ''}`);
  } catch (err) {
    console.error((err as Error).message);
    process.exit(1);
  }
}
