import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FailureType, PermanentError, classifyToolFailure, invalidInput, isPermanentError } from '../../core/errors.ts';

// Recorded stderr samples, in the shape the tools print them (skopeo 1.9, podman 4.3, buildah 1.28,
// cosign 2.6, git 2.39). Each one names the class it must land in.
const SAMPLES: { tool: string; stderr: string; exitCode?: number; expect: FailureType | 'transient' }[] = [
  // skopeo 1.9
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://localhost:5000/nope:latest\\": reading manifest latest in localhost:5000/nope: manifest unknown: manifest unknown"',
    expect: FailureType.ImageNotFound,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://quay.io/fedora/nope:43\\": reading manifest 43 in quay.io/fedora/nope: name unknown: repository not found"',
    expect: FailureType.ImageNotFound,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://quay.io/private/x:1\\": reading manifest 1 in quay.io/private/x: unauthorized: access to the requested resource is not authorized"',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://ghcr.io/o/private:main-43\\": reading manifest main-43 in ghcr.io/o/private: denied"',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://localhost:5000/x:1\\": pinging container registry localhost:5000: Get \\"https://localhost:5000/v2/\\": dial tcp 127.0.0.1:5000: connect: connection refused"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://registry-1.docker.io/library/fedora:43\\": pinging container registry registry-1.docker.io: Get \\"https://registry-1.docker.io/v2/\\": net/http: TLS handshake timeout"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="copying system image from manifest list: writing blob: uploading layer chunked: read tcp 10.0.0.2:40122->140.82.113.33:443: i/o timeout"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest latest in ghcr.io/o/x: received unexpected HTTP status: 502 Bad Gateway"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="initializing source docker://fedora:43: reading manifest 43 in docker.io/library/fedora: toomanyrequests: You have reached your pull rate limit."',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Error parsing image name \\"docker://ghcr.io/o/x:1\\": Get \\"https://ghcr.io/v2/o/x/manifests/1\\": EOF"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="Invalid image name \\"docker://ghcr.io/O/X:1\\", expected colon-separated transport:reference: invalid reference format: repository name must be lowercase"',
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest 1 in example.test/x: received unexpected HTTP status: 503 Service Unavailable"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest 1 in example.test/x: received unexpected HTTP status: 500 Internal Server Error"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest 1 in example.test/x: received unexpected HTTP status: 504 Gateway Time-out"',
    expect: 'transient',
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr:
      'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest 1 in example.test/x: StatusCode: 403, \\"<html>Forbidden</html>\\""',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'skopeo',
    exitCode: 1,
    stderr: 'time="2026-11-25T20:00:00Z" level=fatal msg="reading manifest 1 in example.test/x: StatusCode: 401"',
    expect: FailureType.AuthDenied,
  },
  // podman 4.3
  {
    tool: 'podman',
    exitCode: 125,
    stderr:
      'Trying to pull localhost:5000/nope:latest...\nError: initializing source docker://localhost:5000/nope:latest: reading manifest latest in localhost:5000/nope: manifest unknown: manifest unknown',
    expect: FailureType.ImageNotFound,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr:
      'Trying to pull docker.io/library/nope-nope:latest...\nError: initializing source docker://nope-nope:latest: reading manifest latest in docker.io/library/nope-nope: requested access to the resource is denied',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr: 'Error: localhost/kz-rootfs:missing: image not known',
    expect: FailureType.ImageNotFound,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr: 'Error: invalid reference format',
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr:
      'Error: short-name "kinoite" did not resolve to an alias and no unqualified-search registries are defined in "/etc/containers/registries.conf"',
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr: 'Error: authenticating creds for "ghcr.io": authentication required',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'podman',
    exitCode: 125,
    stderr:
      'Error: writing blob: initiating layer upload to /v2/o/x/blobs/uploads/ in ghcr.io: denied: requested access to the resource is denied',
    expect: FailureType.AuthDenied,
  },
  // buildah
  {
    tool: 'buildah',
    exitCode: 125,
    stderr:
      'Error: creating build container: initializing source docker://registry.fedoraproject.org/fedora:99: reading manifest 99 in registry.fedoraproject.org/fedora: manifest unknown',
    expect: FailureType.ImageNotFound,
  },
  {
    tool: 'buildah',
    exitCode: 125,
    stderr:
      'Error: creating build container: initializing source docker://quay.io/fedora/fedora:43: pinging container registry quay.io: Get "https://quay.io/v2/": dial tcp: lookup quay.io: no such host',
    expect: 'transient',
  },
  {
    tool: 'buildah',
    exitCode: 1,
    stderr: 'error building at STEP "RUN /tmp/build.sh": exit status 1',
    expect: 'transient',
  },
  // cosign 2.6
  {
    tool: 'cosign',
    exitCode: 1,
    stderr:
      'Error: no matching signatures: error verifying bundle: invalid signature when validating ASN.1 encoded signature\nmain.go:74: error during command execution: no matching signatures',
    expect: FailureType.SignatureInvalid,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr:
      'Error: no matching signatures:\nfailed to verify signature\nmain.go:74: error during command execution: no matching signatures:',
    expect: FailureType.SignatureInvalid,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr: 'Error: signature mismatch\nmain.go:74: error during command execution: signature mismatch',
    expect: FailureType.SignatureInvalid,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr: 'Error: no signatures found\nmain.go:74: error during command execution: no signatures found',
    expect: FailureType.SignatureInvalid,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr:
      'Error: signing [localhost:5000/kz/os@sha256:aa]: getting signer: reading key: decrypt private key: decrypt: encrypted: decryption failed',
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr:
      'Error: signing [ghcr.io/o/x@sha256:aa]: accessing entity: GET https://ghcr.io/token?scope=repository%3Ao%2Fx%3Apull&service=ghcr.io: UNAUTHORIZED: authentication required',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'cosign',
    exitCode: 1,
    stderr:
      'Error: GET https://localhost:5000/v2/kz/os/manifests/sha256-aa.sig: MANIFEST_UNKNOWN: manifest unknown; map[Tag:sha256-aa.sig]',
    expect: FailureType.ImageNotFound,
  },
  // git
  {
    tool: 'git',
    exitCode: 128,
    stderr: "remote: Repository not found.\nfatal: repository 'https://github.com/o/nope.git/' not found",
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: could not read Username for 'https://github.com': terminal prompts disabled",
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "remote: Invalid username or password.\nfatal: Authentication failed for 'https://github.com/o/x.git/'",
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: 'git@github.com: Permission denied (publickey).\nfatal: Could not read from remote repository.',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: unable to access 'https://github.com/o/x/': Could not resolve host: github.com",
    expect: 'transient',
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr:
      'error: RPC failed; curl 56 GnuTLS recv error (-54): Error in the pull function.\nfatal: early EOF\nfatal: fetch-pack: invalid index-pack output',
    expect: 'transient',
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: unable to access 'https://github.com/o/x/': The requested URL returned error: 403",
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: 'fatal: Remote branch nope not found in upstream origin',
    expect: FailureType.ImageNotFound,
  },
  // git 2.39, recorded here: a location that is not a repository, and transports git refuses
  {
    tool: 'git',
    exitCode: 128,
    stderr:
      "fatal: '/srv/nope' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights\nand the repository exists.",
    expect: FailureType.InvalidInput,
  },
  { tool: 'git', exitCode: 128, stderr: "fatal: transport 'ext' not allowed", expect: FailureType.InvalidInput },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: repository '/srv/nope.git' does not exist",
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "git: 'remote-foo' is not a git command. See 'git --help'.\n\nThe most similar command is\n\tremote-ftp",
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: strange pathname '-uupload-pack=x' blocked",
    expect: FailureType.InvalidInput,
  },
  // git 2.39 against a local http server, recorded here: the location's own words (a "500" or
  // "denied" in its path) never decide; curl's connect failures and slow transfers stay transient
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: repository 'http://127.0.0.1:33849/500/r.git/' not found",
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr:
      "fatal: unable to access 'http://127.0.0.1:1/denied.git/': Failed to connect to 127.0.0.1 port 1 after 0 ms: Couldn't connect to server",
    expect: 'transient',
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr:
      "fatal: unable to access 'http://127.0.0.1:43355/r.git/': Operation too slow. Less than 1000 bytes/sec transferred the last 2 seconds",
    expect: 'transient',
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: unable to access 'http://127.0.0.1:33849/r.git/': The requested URL returned error: 500",
    expect: 'transient',
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: 'ERROR: Repository not found.\nfatal: Could not read from remote repository.',
    expect: FailureType.InvalidInput,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: 'Host key verification failed.\nfatal: Could not read from remote repository.',
    expect: FailureType.AuthDenied,
  },
  {
    tool: 'git',
    exitCode: 128,
    stderr: "fatal: unable to access 'https://h/r.git/': SSL certificate problem: self-signed certificate",
    expect: FailureType.InvalidInput,
  },
  // a git-only rule never applies to another tool's output
  { tool: 'skopeo', exitCode: 1, stderr: "transport 'ext' not allowed", expect: 'transient' },
];

for (const s of SAMPLES) {
  const first = s.stderr.split('\n').at(-1)!.slice(0, 90);
  test(`classifyToolFailure puts ${s.tool} "${first}" in ${s.expect}`, () => {
    const r = classifyToolFailure({ tool: s.tool, exitCode: s.exitCode, stderr: s.stderr });
    if (s.expect === 'transient') {
      assert.equal(r.permanent, false, `expected transient, got ${JSON.stringify(r)}`);
    } else {
      assert.equal(r.permanent, true, `expected ${s.expect}, got ${JSON.stringify(r)}`);
      assert.equal(r.permanent && r.type, s.expect);
    }
    assert.match(r.reason, new RegExp(`^${s.tool}`));
  });
}

test('classifyToolFailure calls a spawn ENOENT ToolMissing whatever stderr says', () => {
  const r = classifyToolFailure({ tool: 'cosign', stderr: 'manifest unknown', spawnErrorCode: 'ENOENT' });
  assert.deepEqual(
    { permanent: r.permanent, type: r.permanent ? r.type : undefined },
    { permanent: true, type: FailureType.ToolMissing },
  );
  assert.match(r.reason, /cosign is not installed/);
});

test('classifyToolFailure calls exit 127 with "command not found" ToolMissing', () => {
  const r = classifyToolFailure({ tool: 'skopeo', exitCode: 127, stderr: 'env: skopeo: command not found' });
  assert.equal(r.permanent && r.type, FailureType.ToolMissing);
});

test('classifyToolFailure calls EACCES ToolMissing', () => {
  const r = classifyToolFailure({ tool: 'skopeo', stderr: '', spawnErrorCode: 'EACCES' });
  assert.equal(r.permanent && r.type, FailureType.ToolMissing);
});

test('classifyToolFailure treats unknown failures and empty stderr as transient', () => {
  for (const stderr of ['', 'something odd happened', 'Error: exit status 2']) {
    const r = classifyToolFailure({ tool: 'podman', exitCode: 2, stderr });
    assert.equal(r.permanent, false, stderr);
    assert.match(r.reason, /exit 2/);
  }
});

test('classifyToolFailure prefers a network fault over "not found" in the same output', () => {
  const r = classifyToolFailure({
    tool: 'skopeo',
    stderr: 'dial tcp 10.0.0.1:443: connect: connection refused (proxy page: 404 not found)',
  });
  assert.equal(r.permanent, false);
});

test('classifyToolFailure prefers auth over "name unknown" when both appear', () => {
  const r = classifyToolFailure({ tool: 'skopeo', stderr: 'unauthorized: authentication required; name unknown' });
  assert.equal(r.permanent && r.type, FailureType.AuthDenied);
});

test('classifyToolFailure does not call a local "permission denied" an auth failure', () => {
  const r = classifyToolFailure({
    tool: 'podman',
    stderr: 'Error: open /var/lib/containers/storage/x: permission denied',
  });
  assert.notEqual(r.permanent && r.type, FailureType.AuthDenied);
});

test('classifyToolFailure does not read digits inside a digest as an HTTP status', () => {
  const r = classifyToolFailure({
    tool: 'skopeo',
    stderr: 'copying blob sha256:a500b404c503d: something odd',
  });
  assert.equal(r.permanent, false);
  assert.match(r.reason, /unrecognised/);
});

test('PermanentError carries its type and name', () => {
  const e = new PermanentError(FailureType.PolicyViolation, 'x');
  assert.equal(e.name, 'PermanentError');
  assert.equal(e.type, 'PolicyViolation');
  assert.equal(e.message, 'x');
  assert.ok(e instanceof Error);
});

test('invalidInput builds an InvalidInput PermanentError', () => {
  const e = invalidInput('bad');
  assert.equal(e.type, FailureType.InvalidInput);
  assert.equal(e.message, 'bad');
});

test('isPermanentError recognises instances and lookalikes from another realm', () => {
  assert.equal(isPermanentError(new PermanentError(FailureType.ToolMissing, 'x')), true);
  assert.equal(isPermanentError({ name: 'PermanentError', type: 'AuthDenied', message: 'x' }), true);
  assert.equal(isPermanentError({ name: 'PermanentError', type: 'Bogus' }), false);
  assert.equal(isPermanentError(new Error('x')), false);
  assert.equal(isPermanentError(null), false);
  assert.equal(isPermanentError('PermanentError'), false);
});

test('FailureType values equal their keys', () => {
  for (const [k, v] of Object.entries(FailureType)) assert.equal(k, v);
  assert.equal(Object.keys(FailureType).length, 12);
});
