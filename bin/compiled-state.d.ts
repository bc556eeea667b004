/** The state of dist/ under a package root (see compiled-state.js). */
export interface CompiledState {
  state: 'current' | 'missing' | 'stale' | 'no-sources';
  /** What made dist/ missing or stale. */
  reason?: string;
  /** How many paths the check looked at. */
  checked: number;
}

/** Whether the compiled CLI in `<root>/dist` may run: at least as new as every source. */
export function compiledState(root: string): CompiledState;
