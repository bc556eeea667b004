/**
 * The world spec's kernel kinds and release sources (world/spec.ts), and Debian release names.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWorldSpec, WorldSpecError } from '../../world/spec.ts';
import { parseDebianRelease } from '../../world/debian-kernels.ts';
import { fillerLayerSizes } from '../../world/images.ts';

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

test('base.filler takes a layer count and a size with units, and refuses what would not build', () => {
  const withFiller = (filler: unknown) => {
    const raw = base(['6.18.3-200.fc43.x86_64']);
    return { ...raw, base: { ...raw.base, filler } };
  };
  assert.deepEqual(parseWorldSpec(withFiller({ layers: 48, size: '2GB' }), 'spec.yaml').base.filler, {
    layers: 48,
    size: 2e9,
  });
  assert.equal(
    parseWorldSpec(withFiller({ layers: 4, size: '1.5GiB' }), 'spec.yaml').base.filler!.size,
    1.5 * 1024 ** 3,
  );
  assert.equal(parseWorldSpec(withFiller({ layers: 4, size: 250e6 }), 'spec.yaml').base.filler!.size, 250e6);
  assert.equal(parseWorldSpec(base(['6.18.3-200.fc43.x86_64']), 'spec.yaml').base.filler, undefined);
  assert.match(problems(withFiller({ layers: 60, size: 'big' })), /base\.filler\.size.*must be a size such as "250MB"/);
  assert.match(problems(withFiller({ layers: 60, size: '20TB' })), /base\.filler\.size.*must be a size such as/);
  assert.match(problems(withFiller({ layers: 60, size: '17GiB' })), /base\.filler\.size.*at most 16GiB/);
  assert.match(problems(withFiller({ layers: 0, size: '1GB' })), /base\.filler\.layers.*at least 1/);
  assert.match(problems(withFiller({ layers: 51, size: '1GB' })), /base\.filler\.layers.*at most 50/);
  assert.match(problems(withFiller({ layers: 2.5, size: '1GB' })), /base\.filler\.layers.*whole number/);
  assert.match(problems(withFiller({ layers: 60, size: '1MB' })), /base\.filler\.size.*at least 64 KiB per layer/);
  assert.match(problems(withFiller({ layers: 60 })), /base\.filler\.size/);
  assert.match(problems(withFiller({ layers: 60, size: '1GB', seed: 3 })), /base\.filler/);
});

test('filler layer sizes are uneven, deterministic and sum to the size', () => {
  const sizes = fillerLayerSizes({ layers: 60, size: 2e9 });
  assert.equal(sizes.length, 60);
  assert.equal(
    sizes.reduce((a, b) => a + b, 0),
    2e9,
  );
  assert.ok(new Set(sizes).size > 3, 'layer sizes vary');
  assert.deepEqual(fillerLayerSizes({ layers: 60, size: 2e9 }), sizes);
});

test('base.compression is gzip unless the spec names zstd or zstd:chunked; other formats are refused by name', () => {
  const withCompression = (compression: unknown) => {
    const raw = base(['6.18.3-200.fc43.x86_64']);
    return { ...raw, base: { ...raw.base, compression } };
  };
  assert.equal(parseWorldSpec(base(['6.18.3-200.fc43.x86_64']), 'spec.yaml').base.compression, 'gzip');
  for (const c of ['gzip', 'zstd', 'zstd:chunked'])
    assert.equal(parseWorldSpec(withCompression(c), 'spec.yaml').base.compression, c);
  assert.match(
    problems(withCompression('xz')),
    /base\.compression.*must be one of gzip, zstd, zstd:chunked \(buildah push --compression-format\)/,
  );
});

test('registry.auth is none unless the spec asks for token auth; other modes are refused by name', () => {
  const k = ['6.17.7-300.fc43.x86_64'];
  assert.equal(parseWorldSpec(base(k), 'spec.yaml').registry.auth, 'none');
  assert.equal(parseWorldSpec({ ...base(k), registry: { auth: 'token' } }, 'spec.yaml').registry.auth, 'token');
  assert.match(problems({ ...base(k), registry: { auth: 'htpasswd' } }), /registry\.auth: must be none or token/);
});
