// AMD family 10h ("K10") revision B3: Opteron 23xx/83xx "Barcelona", Phenom X4 9x50 / X3 8650
// "Toliman". SVM with nested paging, LBR virtualization and SVM lock, but no NRIPS: the family
// gained NRIP save with revision C (Shanghai, Phenom II), so this is the profile a CPU without NRIPS
// is compared with (e.g. QEMU 7.2 TCG, Bochs `phenom_8650_toliman`).

import { amdLeaves, svmEdx, type Profile } from './cpuid.ts';

export const AMD_10H: Profile = {
  name: 'amd-10h',
  title: 'AMD family 10h model 02h stepping 3 (K10 rev. B3: Opteron 23xx "Barcelona", Phenom X3 8650 "Toliman"); SVM without NRIPS',
  vendor: 'AuthenticAMD',
  family: 0x10,
  model: 0x02,
  stepping: 3,
  basis: 'measured',
  cpuid: amdLeaves({
    family: 0x10, model: 0x02, stepping: 3,
    maxStd: 0x5, maxExt: 0x8000001a,
    addressSizes: 0x3030,
    asids: 0x40,
    svmEdx: svmEdx(['NP', 'LBRV', 'SVML']), // 0x7
  }),
  sources: [
    'AMD BIOS and Kernel Developer\'s Guide (BKDG) for AMD Family 10h Processors, pub. 31116: CPUID Fn8000_000A (definition of the leaf)',
    'AMD Revision Guide for AMD Family 10h Processors, pub. 41322 (revision B3 = CPUID 00100F23h)',
    'Bochs bochs/cpu/cpudb/amd/phenomx3_8650_toliman.cc (CPUID 1 EAX 0x00100F23; 8000_000A EAX 1, EBX 0x40, EDX NP|LBRV|SVML)',
    'cross-check, revision C2 for contrast: VirtualBox src/VBox/VMM/VMMR3/cpus/Quad_Core_AMD_Opteron_2384.h (CPUID dump of a Shanghai Opteron 2384, 00100F42h: 8000_000A EBX 0x40, EDX 0xF = with NRIPS; 8000_0008 EAX 0x3030)',
  ],
  notes: [
    'Phenom II and the Shanghai/Istanbul Opterons are revision C or later and DO report NRIPS (EDX 0xF); only revision B parts lack it.',
  ],
};
