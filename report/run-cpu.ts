// The CPU a run is filed under (its family decides the section of the published matrix, the
// recorded hardware the run is shown against, and `svmconf record`'s directory). Read from the
// results alone: each backend's kind and CPU (core/types.ts BackendInfo), never its name.

import type { BackendInfo, CpuIdentity, HostInfo } from '../core/types.ts';
import { hostCpu } from '../model/profiles/identity.ts';

/**
 * The run's own model column: a model backend that is not a reference column (those, `model@<profile>`
 * beside a Bochs flavour, name themselves as their reference: BackendInfo.reference).
 */
export function isRunModel(b: BackendInfo): boolean {
  return b.kind === 'model' && b.reference !== b.name;
}

/**
 * The family a run is filed under: its first available hardware backend's CPU when known, else
 * the model's profile, else any backend's CPU, else the host. Emulators alone do not decide it:
 * a run of model + qemu-tcg is a comparison with the model's family.
 */
export function runCpu(backends: readonly BackendInfo[], host: HostInfo): CpuIdentity {
  const pick = (is: (b: BackendInfo) => boolean) => backends.find((b) => is(b) && b.available && b.cpu)?.cpu;
  return pick((b) => b.kind === 'hardware') ?? pick(isRunModel) ?? backends.find((b) => b.cpu)?.cpu ?? hostCpu(host);
}
