/**
 * What the activity factory receives from the worker's composition root.
 */
import type { RegistryClient } from './registry-http.ts';
import type { Host } from './host.ts';

/** Dependencies of every activity module. */
export interface ActivityDeps {
  /** Registry HTTP client with this host's credentials. */
  registry: RegistryClient;
  /** Host-local settings and secrets. */
  host: Host;
}
