// Which CPU each backend's records show, with its family (model/profiles/families.ts), for
// results.json (BackendInfo.cpu) and for choosing the model profile of a hardware run.
//   model, model-l0   the profile's own signature
//   qemu-tcg          the CPU model QEMU emulates (-cpu), from QEMU's CPU model table below
//   model@<profile>   a reference model column (for a Bochs flavour): that profile's signature
//   bochs-<flavour>   the CPU model Bochs emulates (cpu: model=), from the table below
//   kvm, qemu-kvm     the host CPU (-cpu host passes the host's signature through)
//   kvm-tcg           QEMU's -cpu max under TCG, which its probe reads from the TCG host
//   console           the machine behind the console: only when the user says it (--machine-cpu),
//                     since the kernels do not report CPUID on the wire

import type { BackendInfo, CpuIdentity, HostInfo } from '../core/types.ts';
import { columnFamily } from '../core/columns.ts';
import { decodeCpuidSignature, VENDOR_AMD, type CpuSignature } from '../model/profiles/families.ts';
import { hostCpu, identify } from '../model/profiles/identity.ts';
import type { Profile } from '../model/profile.ts';
import { defaultCpuModel } from './backends/qemu.ts';
import { findProfile } from '../model/profiles/index.ts';

/**
 * CPUID 1 signatures of the Bochs 2.7 CPU models of the bochs-* backends (runner/backends/bochs.ts):
 * cpu/cpudb/amd/ryzen.cc leaf 1 EAX 0x00800f11; phenomx3_8650_toliman.cc is the source of the
 * amd-10h profile, whose signature it shares (family 10h model 02h stepping 3).
 */
export const BOCHS_CPU_MODELS: Readonly<Record<string, CpuSignature & { modelName: string }>> = {
  'bochs-ryzen': { vendor: VENDOR_AMD, family: 0x17, model: 0x01, stepping: 1, modelName: 'Bochs cpu model ryzen' },
  'bochs-phenom': { vendor: VENDOR_AMD, family: 0x10, model: 0x02, stepping: 3, modelName: 'Bochs cpu model phenom_8650_toliman' },
};

/**
 * CPUID 1 signatures of the QEMU CPU models the qemu-tcg backend may be given (QEMU
 * target/i386/cpu.c builtin_x86_defs: vendor, family, model, stepping of each definition).
 */
export const QEMU_CPU_MODELS: Readonly<Record<string, CpuSignature>> = {
  qemu64: { vendor: VENDOR_AMD, family: 15, model: 107, stepping: 1 },
  phenom: { vendor: VENDOR_AMD, family: 16, model: 2, stepping: 3 },
  EPYC: { vendor: VENDOR_AMD, family: 23, model: 1, stepping: 2 },
  'EPYC-Rome': { vendor: VENDOR_AMD, family: 23, model: 49, stepping: 0 },
  'EPYC-Milan': { vendor: VENDOR_AMD, family: 25, model: 1, stepping: 1 },
  'EPYC-Genoa': { vendor: VENDOR_AMD, family: 25, model: 17, stepping: 0 },
};

/**
 * `--machine-cpu`: CPUID Fn0000_0001 EAX in hex (`0x00A00F11`), optionally with the vendor
 * (`HygonGenuine:0x00900F01`; AMD by default). Throws with what is expected.
 */
export function parseMachineCpu(text: string, modelName?: string): CpuIdentity {
  const m = /^(?:([A-Za-z]{12}):)?(0x)?([0-9a-fA-F]{1,8})$/.exec(text.trim());
  if (!m) throw new Error(`--machine-cpu ${JSON.stringify(text)}: expected CPUID Fn0000_0001 EAX in hex, e.g. 0x00A00F11 (optionally VENDOR:0x…)`);
  const d = decodeCpuidSignature(Number.parseInt(m[3]!, 16));
  return identify({ vendor: m[1] ?? VENDOR_AMD, family: d.family, model: d.model, stepping: d.stepping }, `--machine-cpu ${text.trim()}`, modelName ? { modelName } : {});
}

/** The CPU a backend's records show, or undefined when nothing says (a console without --machine-cpu). */
export function backendCpu(info: BackendInfo, ctx: { host: HostInfo; profile: Profile; machineCpu?: CpuIdentity; tcgCpuModel?: string }): CpuIdentity | undefined {
  const name = info.name;
  if (name.startsWith('model@')) {
    const profile = findProfile(name.slice('model@'.length));
    return profile ? identify(profile, `profile ${profile.name}`, { modelName: `svmconf model, profile ${profile.name}` }) : undefined;
  }
  if (info.kind === 'model') {
    return identify(ctx.profile, `profile ${ctx.profile.name}`, { modelName: `svmconf model, profile ${ctx.profile.name}` });
  }
  const bochs = BOCHS_CPU_MODELS[name];
  if (bochs) return identify(bochs, `Bochs 2.7 (emulated)`, { modelName: bochs.modelName });
  // the host's qemu-tcg and each pinned QEMU's column (qemu-tcg@11.1) emulate the same CPU model
  if (columnFamily(info) === 'qemu-tcg') {
    const cpuModel = (ctx.tcgCpuModel ?? defaultCpuModel('tcg')).split(',')[0]!;
    const sig = QEMU_CPU_MODELS[cpuModel];
    return sig ? identify(sig, `QEMU -cpu ${cpuModel} (emulated)`, { modelName: `QEMU ${cpuModel}` }) : undefined;
  }
  if (name === 'kvm' || name === 'qemu-kvm') return hostCpu(ctx.host);
  if (name === 'console') return ctx.machineCpu;
  // a backend that names its own CPU when probed (kvm-tcg: the TCG host's /proc/cpuinfo)
  return info.cpu;
}
