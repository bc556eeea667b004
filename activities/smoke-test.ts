/**
 * Smoke test of the pushed candidate, by digest: stream only the layers the base does not
 * already have and require zfs, zpool and a zfs.ko for every expected kernel (whiteouts honoured).
 */
import { Context } from '@temporalio/activity';
import { LayerScan } from '../core/layers.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { scanLayers } from './layer-reader.ts';
import type { ActivityDeps } from './deps.ts';

/** Activities of the smoke-test stage. */
export function smokeTestActivities({ registry }: ActivityDeps) {
  return {
    /** Passes or throws MissingModulePayload naming the kernel(s) without a module. */
    async smokeTestCandidate(input: { candidate: string; base: string; kernels: string[] }): Promise<{ kernels: string[]; layersRead: number; layersSkipped: number; bytesRead: number }> {
      const ctx = Context.current();
      const base = await registry.getImage(input.base);
      const skip = new Set(base.layers.map((l) => l.digest));
      const candidate = await registry.getImage(input.candidate);
      const scan = new LayerScan({ expectedKernels: input.kernels });
      const { layersRead, bytesRead } = await scanLayers({
        client: registry,
        ref: input.candidate,
        skipLayerDigests: skip,
        onLayer: (i) => {
          scan.beginLayer();
          ctx.heartbeat({ layer: i });
        },
        onEntry: (_i, e) => scan.entry(e),
        signal: ctx.cancellationSignal,
      });
      const result = scan.smoke(input.candidate);
      if (!result.ok) throw new PermanentError(FailureType.MissingModulePayload, result.message);
      return { kernels: result.kernels, layersRead, layersSkipped: candidate.layers.length - layersRead, bytesRead };
    },
  };
}
