// AMD family 17h model 01h (Zen 1: Ryzen 7 1800X "Summit Ridge", EPYC 7001 "Naples"). Adds AVIC,
// virtual VMSAVE/VMLOAD and virtual GIF to the 15h set.

import { amdLeaves, svmEdx, type Profile } from './cpuid.ts';

export const AMD_17H: Profile = {
  name: 'amd-17h',
  title: 'AMD family 17h model 01h stepping 1 (Zen 1: Ryzen 7 1800X, EPYC 7001 "Naples")',
  vendor: 'AuthenticAMD',
  family: 0x17,
  model: 0x01,
  stepping: 1,
  basis: 'measured',
  cpuid: amdLeaves({
    family: 0x17, model: 0x01, stepping: 1,
    maxStd: 0xd, maxExt: 0x8000001f,
    addressSizes: 0x3030,
    asids: 0x8000,
    // 0x1BCFF, as measured (bit 11 is set on the part and named nowhere public)
    svmEdx: svmEdx(['NP', 'LBRV', 'SVML', 'NRIPS', 'TSC_RATE', 'VMCB_CLEAN', 'FLUSH_BY_ASID', 'DECODE_ASSISTS',
      'PAUSE_FILTER', 'UNNAMED_11', 'PAUSE_FILTER_THRESHOLD', 'AVIC', 'VMSAVE_VIRT', 'VGIF']),
  }),
  sources: [
    'AMD Processor Programming Reference (PPR) for AMD Family 17h Model 01h, Revision B1 Processors, pub. 54945: CPUID_Fn8000000A',
    'VirtualBox src/VBox/VMM/VMMR3/cpus/AMD_Ryzen_7_1800X_Eight_Core.h (CPUID dump of a Ryzen 7 1800X: 1 EAX 0x00800F11; 8000_0008 EAX 0x3030; 8000_000A EAX 1, EBX 0x8000, EDX 0x1BCFF)',
  ],
  notes: ['Zen 2 (model 31h, EPYC 7002 "Rome") is not measured here.'],
};
