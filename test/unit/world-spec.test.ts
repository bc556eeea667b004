/**
 * The world spec's kernel kinds and release sources (world/spec.ts), and Debian release names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorldSpec, WorldSpecError } from '../../world/spec.ts';
import { parseDebianRelease } from '../../world/debian-kernels.ts';

const base = (kernels: unknown[], releases: unknown[] = [{ version: '2.4.4' }], stream: object = {}) => ({
  name: 'w',
  base: { repository: 'ublue-os/kinoite-main', versions: [{ version: '43.20261201.0', kernels }] },
  builder: { repository: 'ublue-os/devcontainer' },
  zfs: { releases },
  stream: { name: 'w', zfsLine: '2.4', owner: 'kinoite', ...stream },
});
const problems = (raw: object) => {
  try {
    parseWorldSpec(raw, 'spec.yaml');
  } catch (err) {
    assert.ok(err instanceof WorldSpecError, String(err));
    return err.problems.join('\n');
  }
  assert.fail('the spec was accepted');
};

test('debian kernels and real OpenZFS releases parse next to synthetic ones', () => {
  const spec = parseWorldSpec(
    base(
      [
        { kind: 'debian', release: '6.1.0-47-cloud-amd64' },
        { kind: 'debian', release: '6.12.117+deb12-cloud-amd64' },
      ],
      [
        { source: 'openzfs', tag: 'zfs-2.2.7' },
        { version: '2.2.8', linuxMax: '6.15' },
      ],
    ),
    'spec.yaml',
  );
  assert.deepEqual(spec.base.versions[0]!.kernels, [
    { kind: 'debian', release: '6.1.0-47-cloud-amd64' },
    { kind: 'debian', release: '6.12.117+deb12-cloud-amd64' },
  ]);
  assert.deepEqual(spec.zfs.releases[0], { source: 'openzfs', tag: 'zfs-2.2.7' });
  assert.equal(spec.zfs.releases[1]!.source, 'synthetic');
});

test('a debian kernel needs a Debian release name, and unknown kinds list the supported ones', () => {
  assert.match(
    problems(base([{ kind: 'debian', release: '6.18.3-200.fc43.x86_64' }])),
    /must be a Debian kernel release such as 6\.1\.0-47-cloud-amd64/,
  );
  assert.match(
    problems(base([{ kind: 'fedora', release: '6.18.3-200.fc43.x86_64' }])),
    /unknown kernel kind "fedora": the world supports "synthetic", "debian"/,
  );
});

test('a real release on synthetic kernels is refused: a synthetic kernel has no build tree', () => {
  assert.match(
    problems(base(['6.18.3-200.fc43.x86_64'], [{ source: 'openzfs', tag: 'zfs-2.2.7' }])),
    /zfs\.releases: real OpenZFS releases \(zfs-2\.2\.7\) build against kernel headers, which synthetic kernels \(6\.18\.3-200\.fc43\.x86_64\) do not have/,
  );
  assert.match(
    problems(base([{ kind: 'debian', release: '6.1.0-47-cloud-amd64' }], [{ source: 'openzfs', tag: '2.2.7' }])),
    /must be an OpenZFS tag such as zfs-2\.2\.7/,
  );
});

test('a boot check on synthetic kernels is refused', () => {
  assert.match(
    problems(base(['6.18.3-200.fc43.x86_64'], undefined, { boot: 'required' })),
    /stream\.boot: synthetic kernels .* cannot boot/,
  );
});

test('Debian release names split into ABI, flavour and series; meta and unsigned packages are not releases', () => {
  assert.deepEqual(parseDebianRelease('6.12.117+deb12-cloud-amd64'), {
    release: '6.12.117+deb12-cloud-amd64',
    abi: '6.12.117+deb12',
    flavour: 'cloud-amd64',
    series: '6.12',
  });
  assert.deepEqual(parseDebianRelease('6.1.0-47-rt-amd64'), {
    release: '6.1.0-47-rt-amd64',
    abi: '6.1.0-47',
    flavour: 'rt-amd64',
    series: '6.1',
  });
  assert.equal(parseDebianRelease('6.12-cloud-amd64'), undefined);
  assert.equal(parseDebianRelease('6.1.0-47-cloud-amd64-unsigned'), undefined);
  assert.equal(parseDebianRelease('6.1.0-47-cloud-amd64-dbg'), undefined);
});
