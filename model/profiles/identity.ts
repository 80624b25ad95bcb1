// A CPU as results.json records it (core/types.ts CpuIdentity): its CPUID signature, where the
// signature was read, and the family-table row it falls in (families.ts). The runner stamps one on
// every backend it probes (runner/cpu.ts); the report falls back to the host's when a run names no
// CPU (report/run-cpu.ts). Both stages need it, so it sits with the family table below them.

import type { CpuIdentity, HostInfo } from '../../core/types.ts';
import { classifyCpu, type CpuSignature } from './families.ts';

/** CpuIdentity.source of a CPU read from this host's /proc/cpuinfo (kvm, qemu-kvm, the fallback of a run). */
export const HOST_CPU_SOURCE = 'host /proc/cpuinfo';

/** A CpuIdentity from a signature and where it was read. */
export function identify(sig: CpuSignature, source: string, extra: { modelName?: string; microcode?: string } = {}): CpuIdentity {
  const f = classifyCpu(sig);
  return {
    vendor: sig.vendor, family: sig.family, model: sig.model, stepping: sig.stepping,
    ...(extra.modelName ? { modelName: extra.modelName } : {}),
    ...(extra.microcode ? { microcode: extra.microcode } : {}),
    source, familyName: f.name, familySlug: f.slug,
    ...(f.profile ? { profile: f.profile } : {}),
  };
}

/** The CPU of the machine svmconf runs on. */
export function hostCpu(host: HostInfo): CpuIdentity {
  return identify(host, HOST_CPU_SOURCE, { modelName: host.modelName, ...(host.microcode ? { microcode: host.microcode } : {}) });
}
