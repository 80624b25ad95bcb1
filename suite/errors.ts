// The error of a request that cannot be met as asked (an unknown backend, profile or mutant, a
// filter that matches no case, options that contradict each other): the CLI prints its message
// and exits with the usage code (bin/cli.ts EXIT.USAGE), where a failing run exits with ERROR.

export class UsageError extends Error {
  override name = 'UsageError';
}
