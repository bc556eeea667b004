/**
 * `run --wait --artifacts DIR`: the original's workflow artifacts written as files after the run
 * ends (docs/artifacts.md). Each file is written whole or not at all (temporary file, then rename).
 */
import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { artifactJson, artifactRun, buildInputsDocument, provenanceDocument, type LockUse } from '../core/artifacts.ts';
import type { PipelineResult } from '../core/pipeline.ts';

/** Writes `text` to `file` atomically: a reader sees the old file or the whole new one, never a part. */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomUUID()}.tmp`);
  try {
    await writeFile(tmp, text);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Writes `build-inputs.json` when the run resolved its inputs, and `build-provenance.json` when its
 * candidate passed (promoted, or not promoted and why); returns the files written.
 */
export async function writeRunArtifacts(
  dir: string,
  run: { workflowId: string; result: Partial<PipelineResult>; by: string; lock: LockUse },
  env: NodeJS.ProcessEnv,
  at = new Date(),
): Promise<string[]> {
  const inputs = run.result.inputs;
  const id = inputs && artifactRun(env, { workflowId: run.workflowId, inputs, by: run.by });
  const docs: [string, object | undefined][] = [
    ['build-inputs.json', inputs && id && buildInputsDocument({ run: id, at, inputs, lock: run.lock })],
    ['build-provenance.json', id && provenanceDocument({ run: id, at, result: run.result })],
  ];
  const written: string[] = [];
  for (const [name, doc] of docs) {
    const file = join(dir, name);
    // DIR describes this run only: a file an earlier run left there, which this run has none of, goes.
    if (!doc) await rm(file, { force: true });
    else {
      await writeFileAtomic(file, artifactJson(doc));
      written.push(file);
    }
  }
  return written;
}
