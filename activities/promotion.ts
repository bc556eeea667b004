/**
 * Promotion stage: copy an exact digest between repositories inside the registry (blobs mounted,
 * manifest bytes unchanged, so the digest cannot change), sign and attest it with cosign, move tags.
 * Every activity here is safe to run twice.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseImageRef, digestRef } from '../core/refs.ts';
import { PermanentError, FailureType } from '../core/errors.ts';
import { attestArgs, cosign, signArgs, verifyArgs, verifyAttestationArgs, verifyCommand } from './cosign.ts';
import { toolPath } from './host.ts';
import type { ActivityDeps } from './deps.ts';

/** Activities of the promotion saga (and rollback). */
export function promotionActivities({ registry, host }: ActivityDeps) {
  const cosignBin = () => toolPath('cosign');

  async function verify(stream: string, ref: string): Promise<boolean> {
    try {
      await cosign({
        bin: cosignBin(),
        args: verifyArgs({
          ref,
          publicKeyFile: host.signing(stream).publicKeyFile,
          insecure: host.isInsecure(ref),
          tlog: host.signing(stream).tlog,
        }),
        authFile: host.authFile(),
      });
      return true;
    } catch (err) {
      if (
        err instanceof PermanentError &&
        err.type !== FailureType.SignatureInvalid &&
        err.type !== FailureType.ImageNotFound
      )
        throw err;
      if (
        !(err instanceof PermanentError) &&
        !/no matching signatures|no signatures found|MANIFEST_UNKNOWN|not found/i.test((err as Error).message)
      )
        throw err;
      return false;
    }
  }

  return {
    /** Current digests of tags (null when a tag does not exist yet), to restore them if a promotion fails. */
    async readTagDigests(input: { refs: string[] }): Promise<Record<string, string | null>> {
      const out: Record<string, string | null> = {};
      for (const ref of input.refs) out[ref] = (await registry.resolveDigest(ref)) ?? null;
      return out;
    },

    /** Copies `from` (name@digest) to `to` (name:tag or name@digest) keeping the exact manifest bytes; returns the digest. */
    async copyImageByDigest(input: { from: string; to: string }): Promise<{ digest: string }> {
      const src = parseImageRef(input.from, 'copy source');
      const dst = parseImageRef(input.to, 'copy destination');
      await host.assertWritable(input.to, 'copy destination');
      if (!src.digest)
        throw new PermanentError(
          FailureType.PolicyViolation,
          `Refusing to copy ${input.from}: promotion copies only by digest, never by tag.`,
        );
      if (src.registry !== dst.registry)
        throw new PermanentError(
          FailureType.InvalidInput,
          `Copy from ${src.registry} to ${dst.registry} is not supported: candidate and stable repositories must live in one registry.`,
        );
      const manifest = await registry.getManifest(input.from);
      if (manifest.digest !== src.digest)
        throw new PermanentError(FailureType.PolicyViolation, `Registry returned ${manifest.digest} for ${input.from}`);
      const children: string[] = manifest.manifest.manifests?.map((m) => m.digest) ?? [];
      for (const child of children)
        await this.copyImageByDigest({ from: digestRef(src.name, child), to: digestRef(dst.name, child) });
      if (!children.length) {
        const blobs: string[] = [
          ...(manifest.manifest.config ? [manifest.manifest.config.digest] : []),
          ...(manifest.manifest.layers ?? []).map((l) => l.digest),
        ];
        for (const digest of blobs) {
          if (src.name !== dst.name && !(await registry.blobExists(dst.name, digest)))
            await registry.mountBlob({ from: src.name, to: dst.name, digest });
        }
      }
      const digest = await registry.putManifest(
        dst.name,
        dst.tag ?? dst.digest ?? src.digest,
        manifest.bytes,
        manifest.mediaType,
      );
      if (digest !== src.digest)
        throw new PermanentError(
          FailureType.PolicyViolation,
          `Copy of ${input.from} to ${input.to} produced digest ${digest}; expected the exact source digest.`,
        );
      return { digest };
    },

    /**
     * Signs name@digest with the stream's key unless it already carries a valid signature, then
     * verifies it. Returns the `cosign verify` command a user runs for it, built from this worker's
     * config (its public key, tlog setting and plain-HTTP registries: the client's may differ).
     */
    async signImage(input: { stream: string; ref: string }): Promise<{ alreadySigned: boolean; verify: string }> {
      if (!parseImageRef(input.ref, 'image to sign').digest)
        throw new PermanentError(
          FailureType.PolicyViolation,
          `Refusing to sign ${input.ref}: only exact digests are signed.`,
        );
      await host.assertWritable(input.ref, 'image to sign', input.stream);
      const signing = host.signing(input.stream);
      const command = verifyCommand({
        ref: input.ref,
        publicKeyFile: signing.publicKeyFile,
        insecure: host.isInsecure(input.ref),
        tlog: signing.tlog,
      });
      if (await verify(input.stream, input.ref)) return { alreadySigned: true, verify: command };
      const key = host.signingKey(input.stream);
      const password = await host.signingPassword(input.stream);
      await cosign({
        bin: cosignBin(),
        args: signArgs({ ref: input.ref, key: key.key, insecure: host.isInsecure(input.ref), tlog: signing.tlog }),
        password,
        key,
        authFile: host.authFile(),
      });
      if (!(await verify(input.stream, input.ref)))
        throw new PermanentError(
          FailureType.SignatureInvalid,
          `The signature just made for ${input.ref} does not verify with ${signing.publicKeyFile}: the key pair does not match. Fix signing.keyFile/publicKeyFile.`,
        );
      return { alreadySigned: false, verify: command };
    },

    /** Verifies the signature of name@digest with the stream's public key; throws SignatureInvalid when it does not verify. */
    async verifyImageSignature(input: { stream: string; ref: string }): Promise<{ verified: true }> {
      if (!(await verify(input.stream, input.ref)))
        throw new PermanentError(
          FailureType.SignatureInvalid,
          `${input.ref} has no signature that verifies with ${host.signing(input.stream).publicKeyFile}.`,
        );
      return { verified: true };
    },

    /** Attaches a signed SLSA provenance v1 attestation to name@digest (skipped when one already verifies). */
    async attestProvenance(input: {
      stream: string;
      ref: string;
      predicate: object;
    }): Promise<{ alreadyAttested: boolean }> {
      await host.assertWritable(input.ref, 'image to attest', input.stream);
      const signing = host.signing(input.stream);
      const insecure = host.isInsecure(input.ref);
      const already = await cosign({
        bin: cosignBin(),
        args: verifyAttestationArgs({
          ref: input.ref,
          publicKeyFile: signing.publicKeyFile,
          insecure,
          tlog: signing.tlog,
        }),
        authFile: host.authFile(),
      }).then(
        () => true,
        () => false,
      );
      if (already) return { alreadyAttested: true };
      const key = host.signingKey(input.stream);
      const dir = await mkdtemp(join(tmpdir(), 'kz-attest-'));
      try {
        const file = join(dir, 'predicate.json');
        await writeFile(file, JSON.stringify(input.predicate));
        await cosign({
          bin: cosignBin(),
          args: attestArgs({ ref: input.ref, key: key.key, predicateFile: file, insecure, tlog: signing.tlog }),
          password: await host.signingPassword(input.stream),
          key,
          authFile: host.authFile(),
        });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      return { alreadyAttested: false };
    },
  };
}
