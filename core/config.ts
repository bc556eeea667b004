/**
 * The configuration file: one strict zod schema, the single source of truth for the YAML file,
 * the generated JSON Schema (docs/config.schema.json) and the generated docs/configuration.md.
 *
 * Pure: no file or environment access here. Loading, environment overrides and secret lookups live
 * in client/config-file.ts.
 */
import { z } from 'zod';
import { NOTIFY_EVENTS } from './notify.ts';
import { Rules, refusal, type RuleName, type ValueRule } from './validate.ts';
import { RETRY_DEFAULTS } from './retry-budget.ts';
import { parseSize } from './size.ts';

/** A string checked by one rule of the table (core/validate.ts); `config check` prints `path: "value" problem`. */
export function ruled(rule: RuleName) {
  const r: ValueRule = Rules[rule];
  return z
    .string()
    .superRefine((value, ctx) => {
      const refused = refusal(rule, value);
      if (refused) ctx.addIssue({ code: 'custom', message: refused });
    })
    .meta({ ...r.schema });
}

/** An image reference (`registry/repository[:tag][@sha256:…]`). */
const imageRef = ruled('imageRef');

/** An image repository without tag or digest (`registry/namespace/name`). */
const repository = ruled('repository');

/** A tag pattern; `{fedora}` expands to the Fedora version of the build. */
const tagPattern = ruled('tagPattern');

/** A duration like `30s`, `15m`, `24h` or `7d`. */
const duration = ruled('duration');

/** A name of an environment variable (never the secret itself). */
const envName = z.string().regex(/^[A-Z_][A-Z0-9_]*$/, {
  message: 'must be the NAME of an environment variable (e.g. COSIGN_PASSWORD), never the secret itself',
});

/** An absolute or home-relative file path. */
const filePath = z
  .string()
  .min(1)
  .refine((v) => !/[\n\r\0]/.test(v), { message: 'must be a file path on one line' });

/** Prefix of a signing key held in a worker environment variable (cosign's own `--key env://NAME`). */
export const ENV_KEY_PREFIX = 'env://';

/** A cosign private key reference: a file path or `env://NAME` (the variable's name, never the key). */
const signingKeyRef = filePath.refine(
  (v) => !v.startsWith(ENV_KEY_PREFIX) || /^[A-Z_][A-Z0-9_]*$/.test(v.slice(ENV_KEY_PREFIX.length)),
  {
    message:
      'env:// must be followed by the NAME of an environment variable (e.g. env://SIGNING_SECRET), never the key itself',
  },
);

/** Connection to the Temporal service; environment variables override every field (see client/config-file.ts). */
export const TemporalSettings = z
  .strictObject({
    address: z
      .string()
      .default('127.0.0.1:7233')
      .describe('host:port of the Temporal frontend. Env: TEMPORAL_ADDRESS.'),
    namespace: z.string().default('default').describe('Temporal namespace. Env: TEMPORAL_NAMESPACE.'),
    apiKeyEnv: envName
      .optional()
      .describe(
        'Name of the environment variable holding a Temporal Cloud API key. Env override: TEMPORAL_API_KEY is read directly.',
      ),
    tls: z
      .strictObject({
        certFile: filePath.optional().describe('Client certificate (PEM) for mTLS. Env: TEMPORAL_TLS_CERT.'),
        keyFile: filePath.optional().describe('Client private key (PEM) for mTLS. Env: TEMPORAL_TLS_KEY.'),
        caFile: filePath
          .optional()
          .describe('CA bundle (PEM) that signed the server certificate. Env: TEMPORAL_TLS_CA.'),
        serverName: z.string().optional().describe('Server name to verify, when it differs from the address host.'),
      })
      .optional()
      .describe('TLS settings; omit for a plain-text local dev server.'),
    webUrl: ruled('httpUrl')
      .optional()
      .describe('Base URL of the Temporal Web UI, used to print links to runs (e.g. http://127.0.0.1:8233).'),
    taskQueues: z
      .strictObject({
        control: z
          .string()
          .default('kinoite-zfs-control')
          .describe('Queue for workflows and light activities (registry reads, signing, promotion).'),
        build: z
          .string()
          .default('kinoite-zfs-build')
          .describe('Queue for heavy podman work (akmods builds, compose).'),
      })
      .prefault({})
      .describe('Task queue names.'),
  })
  .describe('How workers and the CLI reach Temporal.');

/** Registry access shared by every stream of a host. */
export const RegistrySettings = z
  .strictObject({
    insecure: z
      .array(ruled('registryHost'))
      .default([])
      .describe(
        'Registry hosts allowed over plain HTTP. Only for local registries; every registry not listed here must use HTTPS.',
      ),
    authFile: filePath
      .optional()
      .describe(
        'containers-auth.json / docker config.json with registry credentials, read on the worker host only. Default: $REGISTRY_AUTH_FILE, else the first of ${XDG_RUNTIME_DIR}/containers/auth.json, ~/.config/containers/auth.json, ~/.docker/config.json that exists (as podman looks). `credHelpers` and `credsStore` helpers (docker-credential-NAME on PATH) are run on the worker.',
      ),
    timeout: duration
      .default('60s')
      .describe(
        "How long a registry may take to answer a request, and pause while sending a body (a large blob may take as long as it keeps coming); then the request fails and is retried within the stream's retry.budget.",
      ),
  })
  .describe('Registry access for all streams.');

/** Where the OpenZFS releases are read from. */
export const ReleaseSource = z
  .strictObject({
    releasesUrl: ruled('httpUrl')
      .default('https://api.github.com/repos/openzfs/zfs/releases?per_page=100')
      .describe('URL of a JSON list of releases shaped like the GitHub releases API ({tag_name, prerelease, draft}).'),
    metaUrl: ruled('releaseUrlTemplate')
      .default('https://raw.githubusercontent.com/openzfs/zfs/{tag}/META')
      .describe('URL template of a release META file; {tag} is the release tag (zfs-2.4.4).'),
    tarballUrl: ruled('releaseUrlTemplate')
      .default('https://github.com/openzfs/zfs/releases/download/{tag}/zfs-{version}.tar.gz')
      .describe('URL template of the release source tarball; {tag} and {version} are expanded.'),
  })
  .describe('OpenZFS release source.');

/** The published repositories of one stream. */
export const StreamImages = z
  .strictObject({
    candidate: repository.describe('Repository of candidate images (composed, not yet promoted).'),
    stable: repository.describe('Repository of the user-facing stable image.'),
    akmodsCandidate: repository.describe(
      'Repository of the akmods cache the pipeline builds and reuses (never user-facing).',
    ),
    akmodsStable: repository.describe(
      'Repository of the stable akmods cache, moved only together with the stable image.',
    ),
    stableTags: z
      .array(tagPattern)
      .min(1)
      .default(['latest', '{fedora}'])
      .describe('Tags moved on every promotion; {fedora} expands to the Fedora version.'),
    akmodsTagPrefix: ruled('tagPrefix').default('main').describe('Prefix of akmods cache tags: <prefix>-<fedora>.'),
  })
  .describe('Where a stream publishes.');

/** Git source of the image recipe, read at an exact commit for every run. */
export const RecipeSource = z
  .strictObject({
    git: ruled('recipeLocation').describe(
      'Git URL (https://, http://, ssh://, git://, file://), user@host:path or local path of the recipe repository; a leading - and the <transport>::<address> form (ext::, fd::) are refused.',
    ),
    ref: ruled('gitRef').default('main').describe('Branch, tag or commit to build.'),
    path: ruled('recipePath').default('recipes').describe('Folder in the repository holding os/ and akmods/.'),
  })
  .describe('The recipe repository.');

/** Promotion policy of a stream. */
export const PromotionSettings = z
  .strictObject({
    policy: z
      .enum(['auto', 'approval', 'never'])
      .default('auto')
      .describe('auto: promote a passing candidate; approval: wait for an approver; never: build and test only.'),
    approvers: z.array(z.string().min(1)).default([]).describe('Who may approve or reject (when policy is approval).'),
    timeout: duration
      .default('72h')
      .describe('How long a candidate waits for approval before the run ends as expired.'),
  })
  .prefault({})
  .describe('When a tested candidate becomes stable.');

/** How a candidate is tested before it may be promoted. */
export const SmokeSettings = z
  .strictObject({
    boot: z
      .enum(['required', 'optional', 'off'])
      .default('required')
      .describe(
        'The booted check: every kernel of the candidate boots under qemu with its own zfs.ko and userland and round-trips a pool. required: a failure fails the run; optional: a failure is a warning; off: not run (build hosts without qemu, or images whose kernels cannot boot here).',
      ),
    bootTimeout: duration
      .default('5m')
      .describe("How long one kernel's booted check may take before it counts as hung."),
  })
  .prefault({})
  .describe('Tests of the candidate after the layer smoke test.');

/** How long a stream's runs retry, by kind of work. */
export const RetrySettings = z
  .strictObject({
    budget: duration
      .default(RETRY_DEFAULTS.budget)
      .describe(
        'How long registry and network calls (registry reads and writes, the release source, signing, git) keep being retried, backing off, before the run fails: the waits between attempts add up to at least this. Failures classified permanent (not found, auth denied, invalid input) fail at once.',
      ),
    maxBackoff: duration
      .default(RETRY_DEFAULTS.maxBackoff)
      .describe('The longest wait between two attempts; waits start at 2 s (or this, when shorter) and double.'),
    buildHostWait: duration
      .default(RETRY_DEFAULTS.buildHostWait)
      .describe(
        'How long a build (akmods, compose, boot check) waits for a build host to take it; then the run\'s progress (status, run --wait, the Web UI) says "no build host has taken this for N minutes".',
      ),
    onNoBuildHost: z
      .enum(['wait', 'fail'])
      .default(RETRY_DEFAULTS.onNoBuildHost)
      .describe(
        'When no build host has taken a build for buildHostWait: wait (schedule it again and keep saying how long it has waited) or fail the run.',
      ),
  })
  .prefault({})
  .describe('Retry budgets of the runs, by kind of work.');

/** One webhook of a stream's notifications. */
export const WebhookSettings = z
  .strictObject({
    url: ruled('webhookUrl').describe('Where the JSON payload is POSTed (docs/notifications.md).'),
    events: z
      .array(z.enum(NOTIFY_EVENTS))
      .min(1)
      .default([...NOTIFY_EVENTS])
      .describe(`Events to send: ${NOTIFY_EVENTS.join(', ')}.`),
    secretEnv: envName
      .optional()
      .describe(
        'Name of a worker environment variable holding the HMAC secret; the payload is then signed in X-Kinoite-ZFS-Signature.',
      ),
  })
  .describe('A webhook.');

/** Cosign key references for a stream; read on the worker host only. */
export const SigningSettings = z
  .strictObject({
    keyFile: signingKeyRef.describe(
      "The cosign private key on worker hosts: a file path, or env://NAME for a worker environment variable holding the key's text (the original's SIGNING_SECRET). Only the reference travels; the key is read on the worker.",
    ),
    publicKeyFile: filePath.describe('Path of the matching public key (cosign.pub), used to verify every signature.'),
    passwordEnv: envName.optional().describe('Name of the environment variable holding the key password.'),
    passwordFile: filePath.optional().describe('File holding the key password (e.g. a systemd credential).'),
    tlog: z
      .boolean()
      .default(true)
      .describe(
        "Upload signatures and attestations to the Rekor transparency log and require a log entry when verifying (cosign's default; users then verify with a plain `cosign verify --key cosign.pub`). false signs offline (--tlog-upload=false) and verifies with --insecure-ignore-tlog: for machines that cannot reach Rekor, such as the test world.",
      ),
  })
  .describe('Signing keys, by reference only.');

/** Nightly (or other) Temporal Schedule of a stream. */
export const ScheduleSettings = z
  .strictObject({
    cron: z.string().default('0 6 * * *').describe('Cron expression of the Temporal Schedule.'),
    timezone: z.string().default('UTC').describe('IANA time zone of the cron expression.'),
    paused: z.boolean().default(false).describe('Create the schedule paused.'),
  })
  .prefault({})
  .describe('When the stream runs on its own.');

/** One published image line. */
export const StreamSettings = z
  .strictObject({
    baseImage: imageRef.describe(
      'Base image to follow, usually a floating tag (ghcr.io/ublue-os/kinoite-main:latest).',
    ),
    builderImage: imageRef.describe(
      'Image the akmods builder runs in: a Fedora image of the base\'s release with the OpenZFS build dependencies and dnf (docs/operations.md, "Builder image").',
    ),
    builderNetwork: z
      .enum(['default', 'none'])
      .default('default')
      .describe(
        "Network of the akmods builder container: default (the recipe installs kernel-devel-<kernel> with dnf) or none (the builder image already carries every kernel's build tree, as in the test world).",
      ),
    buildQueue: ruled('taskQueue')
      .optional()
      .describe(
        "Task queue of this stream's build work (akmods builds, compose, booted check) instead of temporal.taskQueues.build: pins the stream to the build hosts whose workers serve that queue (`worker --queues build --build-queue NAME`), e.g. one queue per architecture (kinoite-zfs-build-aarch64) or per stream. Absent: the shared build queue.",
      ),
    zfs: z
      .strictObject({
        line: ruled('zfsLine').describe('OpenZFS release line; the newest release in it is built.'),
        allowExperimental: z
          .boolean()
          .default(false)
          .describe(
            'Build kernels newer than the release supports (--enable-linux-experimental). Never for stable users.',
          ),
        recheckEvery: duration
          .default('6h')
          .describe(
            'While a kernel of the base is newer than the OpenZFS release supports (a compatibility hold), how often the stream re-checks the release source, besides its schedule; it starts a run by itself when a release supports every kernel.',
          ),
        source: ReleaseSource.prefault({}),
      })
      .describe('Which OpenZFS to build.'),
    images: StreamImages,
    smoke: SmokeSettings,
    recipe: RecipeSource,
    promotion: PromotionSettings,
    retry: RetrySettings,
    schedule: ScheduleSettings,
    notify: z
      .array(WebhookSettings)
      .default([])
      .describe(
        "Webhooks told about the stream's transitions: promoted, failed, blocked, unblocked, approval pending or expired, rolled back.",
      ),
    signing: SigningSettings,
  })
  .describe('One stream: a published image line.');

/** Worker host settings. */
export const WorkerSettings = z
  .strictObject({
    workDir: filePath
      .default('~/.cache/kinoite-zfs/work')
      .describe('Scratch space for builds, checkouts and the kernel memo.'),
    containersConf: filePath
      .optional()
      .describe('CONTAINERS_CONF file for podman/buildah on this host (only where the host needs one).'),
    buildCacheDir: filePath
      .default('~/.cache/kinoite-zfs/builds')
      .describe(
        'Finished akmods builds on this host, keyed by their content (source tarball, builder image, recipe, kernel): the same build is never run twice.',
      ),
    ccacheDir: filePath
      .default('~/.cache/kinoite-zfs/ccache')
      .describe('Compiler cache mounted into akmods builders (used when the builder image has ccache).'),
    minFreeSpace: z
      .string()
      .refine((v) => parseSize(v, { allowZero: true }) !== undefined, {
        message: 'must be a size such as "10GB", "500MB" or "20GiB" ("0" turns the check off)',
      })
      .default('10GB')
      .describe(
        'Least free space, on the containers storage (podman graphroot) and on workDir each, before an akmods build or a compose starts on this host; below it the build fails at once (InsufficientDiskSpace) instead of filling the disk. "0" turns the check off.',
      ),
    metrics: ruled('listenAddress')
      .optional()
      .describe(
        "host:port where the worker serves Prometheus metrics at /metrics: the Temporal SDK's own (workflow task latency, activity execution latency, …) and, on a control worker, the pipeline's, read from the state of every stream in this config at each scrape (docs/operations.md#metrics). Absent: no metrics endpoint.",
      ),
    qemuAccel: z
      .enum(['auto', 'kvm', 'tcg'])
      .default('auto')
      .describe(
        'qemu acceleration of the booted check: auto uses KVM when /dev/kvm works and falls back to TCG (software) when it does not.',
      ),
  })
  .prefault({})
  .describe('Settings of the worker host.');

/** The whole configuration file. */
export const Config = z
  .strictObject({
    $schema: z.string().optional().describe('Path or URL of the JSON Schema, for editors.'),
    temporal: TemporalSettings.prefault({}),
    registries: RegistrySettings.prefault({}),
    worker: WorkerSettings,
    streams: z
      .record(
        z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, { message: 'stream names are lowercase letters, digits and -' }),
        StreamSettings,
      )
      .refine((s) => Object.keys(s).length > 0, { message: 'add at least one stream' })
      .describe('Streams by name.'),
  })
  .superRefine((config, ctx) => {
    // Every plain-HTTP registry a stream uses must be listed explicitly.
    for (const [name, stream] of Object.entries(config.streams)) {
      const refs: [string, string][] = [
        ['baseImage', stream.baseImage],
        ['builderImage', stream.builderImage],
        ...Object.entries(stream.images)
          .filter(([, v]) => typeof v === 'string' && v.includes('/'))
          .map(([k, v]) => [`images.${k}`, v as string] as [string, string]),
      ];
      for (const [field, ref] of refs) {
        const host = ref.split('/')[0];
        if (/^(localhost|127\.|\[::1\])/.test(host) && !config.registries.insecure.includes(host)) {
          ctx.addIssue({
            code: 'custom',
            path: ['streams', name, ...field.split('.')],
            message: `uses registry ${host}, which is not listed in registries.insecure; add "${host}" there if it really serves plain HTTP`,
          });
        }
      }
      for (const [field, url] of [
        ['releasesUrl', stream.zfs.source.releasesUrl],
        ['metaUrl', stream.zfs.source.metaUrl],
        ['tarballUrl', stream.zfs.source.tarballUrl],
      ] as const) {
        if (url.startsWith('http://')) {
          const host = new URL(url.replace(/\{[a-z]+\}/g, 'x')).host;
          if (!config.registries.insecure.includes(host)) {
            ctx.addIssue({
              code: 'custom',
              path: ['streams', name, 'zfs', 'source', field],
              message: `uses plain HTTP host ${host}; list it in registries.insecure or use https`,
            });
          }
        }
      }
      if (stream.buildQueue && stream.buildQueue === config.temporal.taskQueues.control) {
        ctx.addIssue({
          code: 'custom',
          path: ['streams', name, 'buildQueue'],
          message: `is the control queue (temporal.taskQueues.control): control workers run no builds; name a queue of build hosts`,
        });
      }
      if (stream.promotion.policy === 'approval' && stream.promotion.approvers.length === 0) {
        ctx.addIssue({
          code: 'custom',
          path: ['streams', name, 'promotion', 'approvers'],
          message: 'policy is approval but nobody may approve; list at least one approver',
        });
      }
      if (!stream.signing.passwordEnv && !stream.signing.passwordFile) {
        // A key without a password is allowed (cosign accepts an empty password) but must be explicit.
      }
    }
  })
  .describe('kinoite-zfs configuration file');

/** The parsed configuration. */
export type Config = z.infer<typeof Config>;
/** One stream's settings. */
export type StreamSettings = z.infer<typeof StreamSettings>;
/** Temporal connection settings. */
export type TemporalSettings = z.infer<typeof TemporalSettings>;
/** Registry access settings. */
export type RegistrySettings = z.infer<typeof RegistrySettings>;
