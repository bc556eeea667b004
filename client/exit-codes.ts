/**
 * Exit codes of the `kinoite-zfs` executable; scripts and CI can rely on them (docs/operations.md).
 */
export const ExitCode = {
  /** The command did what was asked; for `run`, the run succeeded. */
  Ok: 0,
  /** The run ended without success: failed verdict, blocked, rejected, vetoed, expired. */
  RunFailed: 1,
  /** Bad usage or an invalid configuration file: nothing was started. */
  ConfigError: 2,
  /** Temporal (or another service) could not be reached: nothing was started. */
  ConnectionError: 3,
  /** Anything else (a bug, an unexpected error). */
  InternalError: 4,
} as const;

/** One of the exit codes above. */
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];
