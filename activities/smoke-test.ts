/**
 * Smoke test of the pushed candidate, by digest: stream only the layers the base does not
 * already have and require zfs, zpool and a zfs.ko for every expected kernel (whiteouts
 * honoured), each zfs.ko and spl.ko built for the kernel it is installed for (its vermagic).
 */
import { gunzipSync } from 'node:zlib';
import { Context } from '@temporalio/activity';
import { LayerScan, wantsModuleContent } from '../core/layers.ts';
import type { KernelModules } from '../core/layers.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { DEFAULT_MAX_CONTENT_BYTES, scanLayers } from './layer-reader.ts';
import type { ActivityDeps } from './deps.ts';
import { noteProgress } from './progress.ts';

/** Result of `smokeTestCandidate`: small and JSON-safe (module metadata only, never module bytes). */
export interface SmokeTestResult {
  /** Kernels checked, natural-sorted. */
  kernels: string[];
  /** Per kernel, the vermagic and version of its checked `zfs.ko` (and `spl.ko` when present). */
  modules: Record<string, KernelModules>;
  /** Candidate layers read. */
  layersRead: number;
  /** Candidate layers skipped because the base has them. */
  layersSkipped: number;
  /** Compressed bytes read. */
  bytesRead: number;
}

/** Activities of the smoke-test stage. */
export function smokeTestActivities({ registry }: ActivityDeps) {
  return {
    /**
     * Passes or throws MissingModulePayload naming the kernel(s) without a module, or the module
     * built for another kernel (both releases named), or the module that could not be checked.
     */
    async smokeTestCandidate(input: { candidate: string; base: string; kernels: string[] }): Promise<SmokeTestResult> {
      const ctx = Context.current();
      const base = await registry.getImage(input.base);
      const skip = new Set(base.layers.map((l) => l.digest));
      const candidate = await registry.getImage(input.candidate);
      const scan = new LayerScan({
        expectedKernels: input.kernels,
        // The output limit keeps a gzip bomb from outgrowing what an uncompressed module may be.
        gunzip: (bytes) => gunzipSync(bytes, { maxOutputLength: DEFAULT_MAX_CONTENT_BYTES }),
      });
      const { layersRead, bytesRead } = await scanLayers({
        client: registry,
        ref: input.candidate,
        skipLayerDigests: skip,
        onLayer: (i) => {
          scan.beginLayer();
          noteProgress({ step: `layer ${i}` });
        },
        wantContent: (_i, e) => wantsModuleContent(e.name),
        onEntry: (_i, e, content) => scan.entry(e, content),
        signal: ctx.cancellationSignal,
      });
      const result = scan.smoke(input.candidate);
      if (!result.ok) throw new PermanentError(FailureType.MissingModulePayload, result.message);
      return {
        kernels: result.kernels,
        modules: result.modules,
        layersRead,
        layersSkipped: candidate.layers.length - layersRead,
        bytesRead,
      };
    },
  };
}
