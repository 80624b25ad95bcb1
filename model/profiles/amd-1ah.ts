// AMD family 1Ah (Zen 5: EPYC 9005 "Turin").

import { amdLeaves, svmEdx, type Profile } from './cpuid.ts';

export const AMD_1AH: Profile = {
  name: 'amd-1ah',
  title: 'AMD family 1Ah model 00h (Zen 5: EPYC 9005 "Turin")',
  vendor: 'AuthenticAMD',
  family: 0x1a,
  model: 0x00,
  stepping: 0,
  basis: 'assembled',
  cpuid: amdLeaves({
    family: 0x1a, model: 0x00, stepping: 0,
    maxStd: 0x10, maxExt: 0x80000021,
    addressSizes: 0x3030,
    asids: 0x8000,
    svmEdx: svmEdx(['NP', 'LBRV', 'SVML', 'NRIPS', 'TSC_RATE', 'VMCB_CLEAN', 'FLUSH_BY_ASID', 'DECODE_ASSISTS',
      'PAUSE_FILTER', 'PAUSE_FILTER_THRESHOLD', 'AVIC', 'VMSAVE_VIRT', 'VGIF', 'X2AVIC', 'SPEC_CTRL', 'VNMI', 'SVME_ADDR_CHK']),
    ext21Eax: 1 << 6, // NullSelectClearsBase
  }),
  sources: [
    'AMD PPR for AMD Family 1Ah Model 02h (Turin) processors: CPUID_Fn8000000A, CPUID_Fn80000021 (document number not checked here)',
    'AMD64 Architecture Programmer\'s Manual vol. 3, pub. 24594, appendix E (CPUID Fn8000_000A_EDX bit names)',
    'QEMU target/i386/cpu.c EPYC-Turin (family 26, model 0, stepping 0: the signature used here)',
    'Linux arch/x86/kernel/cpu/amd.c (family 1Ah models 00h-2Fh are Zen 5)',
  ],
  notes: [
    'Assembled: the Zen 4 SVM set; SVM features first shipped with Zen 5 (e.g. the bus-lock threshold and idle-HLT intercepts Linux added for it) are not set until a dump confirms their bits.',
    'Production Turin parts report model 02h (and 11h for Turin dense); model 00h follows QEMU\'s EPYC-Turin.',
    'Address sizes and the highest extended leaf as amd-19h (see its notes).',
  ],
};
