/**
 * The project's namespace on a Temporal service: its search attributes (the `Kz*` keys of
 * workflows/shared.ts) and how long closed runs stay visible. `kinoite-zfs temporal setup` makes
 * it so on any Temporal (idempotent); the worker and the CLI check it at start, so a namespace
 * without the attributes fails at once with the command to run, not later as `BadSearchAttributes`
 * in a worker log and a stack trace from Update-with-Start.
 */
import proto from '@temporalio/proto';
import type { temporal, google } from '@temporalio/proto';
import { SearchAttr } from '../workflows/shared.ts';

type IndexedValueType = temporal.api.enums.v1.IndexedValueType;
// @temporalio/proto is CommonJS: its enums come through the default export.
const { IndexedValueType } = proto.temporal.api.enums.v1;

/** The project's search attributes: name and Temporal type. */
export const SEARCH_ATTRIBUTES: { name: string; type: IndexedValueType; cliType: 'Keyword' | 'KeywordList' }[] =
  Object.values(SearchAttr).map((key) =>
    key.type === 'KEYWORD_LIST'
      ? { name: key.name, type: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST, cliType: 'KeywordList' }
      : { name: key.name, type: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD, cliType: 'Keyword' },
  );

/** How long closed runs stay visible unless `temporal setup --retention` says otherwise. */
export const DEFAULT_RETENTION = '30d';

/** The gRPC services of a Client's Connection or a worker's NativeConnection that this module uses. */
export interface TemporalServices {
  workflowService: temporal.api.workflowservice.v1.WorkflowService;
  operatorService: temporal.api.operatorservice.v1.OperatorService;
}

/** The command that sets the namespace up, as the user types it. */
export function setupCommand(namespace: string): string {
  return `kinoite-zfs temporal setup${namespace === 'default' ? '' : ` --namespace ${namespace}`}`;
}

/** The namespace is missing or lacks search attributes: the message names the command that fixes it. */
export class NamespaceNotReadyError extends Error {
  override name = 'NamespaceNotReadyError';
}

/** gRPC status codes used below. */
const NOT_FOUND = 5;
const ALREADY_EXISTS = 6;
const PERMISSION_DENIED = 7;
const UNIMPLEMENTED = 12;

function grpcCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Fails with {@link NamespaceNotReadyError} when `namespace` does not exist or lacks any of
 * SEARCH_ATTRIBUTES. A service that does not let this identity list search attributes (some
 * Temporal Cloud API keys) is not checked: the runs themselves then say what is missing.
 */
export async function checkNamespace(services: TemporalServices, namespace: string, address: string): Promise<void> {
  let existing: Record<string, IndexedValueType>;
  try {
    existing = (await services.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
  } catch (err) {
    const code = grpcCode(err);
    if (code === NOT_FOUND)
      throw new NamespaceNotReadyError(
        `namespace ${namespace} does not exist on ${address}: run "${setupCommand(namespace)}" once (it creates the namespace and the kinoite-zfs search attributes)`,
      );
    if (code === PERMISSION_DENIED || code === UNIMPLEMENTED) return;
    throw err;
  }
  const missing = SEARCH_ATTRIBUTES.filter((a) => existing[a.name] === undefined).map((a) => a.name);
  if (missing.length)
    throw new NamespaceNotReadyError(
      `namespace ${namespace} on ${address} lacks the search attributes ${missing.join(', ')}: run "${setupCommand(namespace)}" once`,
    );
}

/** What {@link setupNamespace} did. */
export interface SetupResult {
  createdNamespace: boolean;
  addedAttributes: string[];
  retentionSeconds: number;
  previousRetentionSeconds?: number;
}

/**
 * Creates `namespace` when missing, sets its retention, and adds the missing search attributes.
 * Idempotent: running it again changes nothing. A new namespace reaches every Temporal service
 * after its namespace cache refreshes (about 10 s on a self-hosted server), so adding attributes
 * is retried while the namespace is still unknown there.
 */
export async function setupNamespace(
  services: TemporalServices,
  input: { namespace: string; retentionSeconds: number; waitMs?: number },
): Promise<SetupResult> {
  const { namespace, retentionSeconds } = input;
  // protobufjs takes a number where its types say Long.
  const retention = { seconds: retentionSeconds } as unknown as google.protobuf.IDuration;
  let createdNamespace = false;
  let previousRetentionSeconds: number | undefined;
  try {
    const described = await services.workflowService.describeNamespace({ namespace });
    const seconds = described.config?.workflowExecutionRetentionTtl?.seconds;
    previousRetentionSeconds = seconds === undefined || seconds === null ? undefined : Number(String(seconds));
  } catch (err) {
    if (grpcCode(err) !== NOT_FOUND) throw err;
    try {
      await services.workflowService.registerNamespace({
        namespace,
        description: 'kinoite-zfs pipeline runs and streams',
        workflowExecutionRetentionPeriod: retention,
      });
      createdNamespace = true;
    } catch (e) {
      if (grpcCode(e) !== ALREADY_EXISTS) throw e;
    }
  }
  if (!createdNamespace && previousRetentionSeconds !== retentionSeconds)
    await services.workflowService.updateNamespace({
      namespace,
      config: { workflowExecutionRetentionTtl: retention },
    });

  const deadline = Date.now() + (input.waitMs ?? 60_000);
  for (;;) {
    try {
      const existing = (await services.operatorService.listSearchAttributes({ namespace })).customAttributes ?? {};
      const missing = SEARCH_ATTRIBUTES.filter((a) => existing[a.name] === undefined);
      const wrong = SEARCH_ATTRIBUTES.filter((a) => existing[a.name] !== undefined && existing[a.name] !== a.type);
      if (wrong.length)
        throw new Error(
          `namespace ${namespace} already has ${wrong.map((a) => a.name).join(', ')} with another type than kinoite-zfs needs (${wrong.map((a) => `${a.name} ${a.cliType}`).join(', ')}): remove them (temporal operator search-attribute remove) or use another namespace`,
        );
      if (missing.length)
        await services.operatorService.addSearchAttributes({
          namespace,
          searchAttributes: Object.fromEntries(missing.map((a) => [a.name, a.type])),
        });
      return {
        createdNamespace,
        addedAttributes: missing.map((a) => a.name),
        retentionSeconds,
        previousRetentionSeconds,
      };
    } catch (err) {
      // Another set-up added them meanwhile: list again.
      if (grpcCode(err) === ALREADY_EXISTS && Date.now() < deadline) continue;
      // A namespace registered a moment ago is unknown to the other services until their cache refreshes.
      if (grpcCode(err) !== NOT_FOUND || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
