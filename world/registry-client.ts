/**
 * Minimal OCI distribution calls against the world's plain-HTTP registry: read a tag's digest and
 * point a tag at an existing manifest (same bytes, so the digest is exactly the same).
 */

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
].join(', ');

/** Digest a tag (or digest) points at in `http://host/repo`, or undefined when it does not exist. */
export async function manifestDigest(host: string, repository: string, reference: string): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { method: 'HEAD', headers: { Accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(10_000) });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`HEAD ${host}/${repository}:${reference} answered HTTP ${res.status}: is the world registry running?`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

/** Points `tag` at the manifest `digest` of the same repository (uploads the identical manifest bytes). */
export async function putTag(host: string, repository: string, digest: string, tag: string): Promise<void> {
  const get = await fetch(`http://${host}/v2/${repository}/manifests/${digest}`, { headers: { Accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(10_000) });
  if (!get.ok) throw new Error(`GET ${host}/${repository}@${digest} answered HTTP ${get.status}: the manifest must be pushed before it is tagged`);
  const body = new Uint8Array(await get.arrayBuffer());
  const type = get.headers.get('content-type') ?? 'application/vnd.oci.image.manifest.v1+json';
  const put = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { method: 'PUT', headers: { 'Content-Type': type }, body, signal: AbortSignal.timeout(10_000) });
  await put.arrayBuffer();
  if (!put.ok) throw new Error(`PUT ${host}/${repository}:${tag} answered HTTP ${put.status}`);
  const got = put.headers.get('docker-content-digest');
  if (got && got !== digest) throw new Error(`tagging ${host}/${repository}:${tag} gave digest ${got}, expected ${digest}`);
}
