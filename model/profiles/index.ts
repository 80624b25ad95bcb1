// Every CPU profile, oldest family first. `svmconf profiles` lists them; `--profile <name>` picks one.

import type { Profile } from './cpuid.ts';
import { AMD_10H } from './amd-10h.ts';
import { AMD_15H } from './amd-15h.ts';
import { AMD_17H } from './amd-17h.ts';
import { AMD_19H } from './amd-19h.ts';
import { AMD_1AH } from './amd-1ah.ts';

export { AMD_10H, AMD_15H, AMD_17H, AMD_19H, AMD_1AH };

export const PROFILES: readonly Profile[] = [AMD_10H, AMD_15H, AMD_17H, AMD_19H, AMD_1AH];

export function profileNames(): string[] {
  return PROFILES.map((p) => p.name);
}

/** The profile of that name, or undefined. */
export function findProfile(name: string): Profile | undefined {
  return PROFILES.find((p) => p.name === name);
}
