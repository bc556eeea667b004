/**
 * Test fixtures compressed by the real zstd CLI, one frame per call, file to file, each checked
 * with `zstd -t` so that a bad fixture is never blamed on the decoder under test. Piped through
 * stdin and stdout (execa's `input`) on a loaded machine, a frame twice came back without its last
 * bytes, which `zstd -d` itself refuses ("premature end").
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

/** `data` compressed as one zstd frame with `args` (e.g. `--no-content-size`, `--long=25`, `-19`). */
export async function zstdFrame(data: Buffer, ...args: string[]): Promise<Buffer> {
  const dir = await mkdtemp(join(tmpdir(), 'kz-zstd-'));
  try {
    const [input, output] = [join(dir, 'in'), join(dir, 'in.zst')];
    await writeFile(input, data);
    await execa('zstd', ['-q', ...args, '-o', output, input]);
    await execa('zstd', ['-q', '-t', ...args.filter((a) => a.startsWith('--long')), output]);
    return await readFile(output);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
