// The error of a request that cannot be met as asked (an unknown backend, profile or mutant, a
// filter that matches no case, options that contradict each other): the CLI prints its message
// and exits with the usage code (bin/cli.ts EXIT.USAGE), where a failing run exits with ERROR.

export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A backend the user named (`--backend X`) cannot run here (its tool is missing, /dev/kvm is
 * absent…): the run stops before it starts, with the backend's reason and its install hint, and
 * the CLI exits with ERROR. A backend that was only auto-detected stays a note of the run.
 */
export class BackendUnavailableError extends Error {
  override name = 'BackendUnavailableError';
}

/** A run stopped by a signal (SIGINT, SIGTERM): what finished is written, marked interrupted. */
export class RunInterruptedError extends Error {
  override name = 'RunInterruptedError';
  constructor(
    message: string,
    /** The signal that stopped the run (its exit code: 128 + signal number). */
    readonly signal: 'SIGINT' | 'SIGTERM',
    /** results.json of what finished, when it was written. */
    readonly written?: string,
  ) {
    super(message);
  }
}
