/** A minimal valid config of one stream `s` on a local registry, for tests that break one field of it. */
export function minimalConfig(temporalAddress?: string): Record<string, any> {
  return {
    ...(temporalAddress ? { temporal: { address: temporalAddress } } : {}),
    registries: { insecure: ['127.0.0.1:5000'] },
    streams: {
      s: {
        baseImage: '127.0.0.1:5000/ublue-os/kinoite-main:latest',
        builderImage: '127.0.0.1:5000/ublue-os/devcontainer:latest',
        zfs: { line: '2.4' },
        images: {
          candidate: '127.0.0.1:5000/o/c',
          stable: '127.0.0.1:5000/o/s',
          akmodsCandidate: '127.0.0.1:5000/o/ac',
          akmodsStable: '127.0.0.1:5000/o/as',
        },
        recipe: { git: '/srv/recipe.git' },
        signing: { keyFile: '/k', publicKeyFile: '/p' },
      },
    },
  };
}
