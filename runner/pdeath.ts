// A VMM must not outlive the run that started it, however the run ends (docs/protocol.md
// "Limits"): on SIGINT/SIGTERM the runner kills it, and against a `kill -9` of the runner each VMM
// is started under util-linux's setpriv with a parent-death signal, so the kernel sends it SIGKILL
// when the runner's process goes away. (The native helper sets its own, native/kvm/main.c.) When a
// launch goes through `unshare -r`, setpriv must come after unshare: a change of credentials
// clears the parent-death signal.

import { accessSync, constants } from 'node:fs';

export const SETPRIV = '/usr/bin/setpriv';

let available: boolean | undefined;

function hasSetpriv(): boolean {
  if (available === undefined) {
    try {
      accessSync(SETPRIV, constants.X_OK);
      available = true;
    } catch {
      available = false;
      process.stderr.write(`svmconf: ${SETPRIV} not found (util-linux): a VMM would outlive a run killed with kill -9; apt-get install util-linux\n`);
    }
  }
  return available;
}

/** `file args` as a command that gets SIGKILL when its parent (this process) dies. */
export function withParentDeath(file: string, args: readonly string[]): { file: string; args: string[] } {
  return hasSetpriv() ? { file: SETPRIV, args: ['--pdeathsig', 'KILL', '--', file, ...args] } : { file, args: [...args] };
}
