// AMD family 15h model 01h ("Bulldozer": FX-8150, Opteron 6200/4200 "Interlagos/Valencia"). The
// first family with the full set of SVM extensions KVM relies on: NRIPS, VMCB clean bits, flush by
// ASID, decode assists, pause filter, TSC ratio.

import { amdLeaves, svmEdx, type Profile } from './cpuid.ts';

export const AMD_15H: Profile = {
  name: 'amd-15h',
  title: 'AMD family 15h model 01h stepping 2 (Bulldozer: FX-8150, Opteron 6200 "Interlagos")',
  vendor: 'AuthenticAMD',
  family: 0x15,
  model: 0x01,
  stepping: 2,
  basis: 'measured',
  cpuid: amdLeaves({
    family: 0x15, model: 0x01, stepping: 2,
    maxStd: 0xd, maxExt: 0x8000001e,
    addressSizes: 0x3030,
    asids: 0x10000,
    // 0x14FF, as measured
    svmEdx: svmEdx(['NP', 'LBRV', 'SVML', 'NRIPS', 'TSC_RATE', 'VMCB_CLEAN', 'FLUSH_BY_ASID', 'DECODE_ASSISTS', 'PAUSE_FILTER', 'PAUSE_FILTER_THRESHOLD']),
  }),
  sources: [
    'AMD BKDG for AMD Family 15h Models 00h-0Fh Processors, pub. 42301: CPUID Fn8000_000A',
    'VirtualBox src/VBox/VMM/VMMR3/cpus/AMD_FX_8150_Eight_Core.h (CPUID dump of an FX-8150: 1 EAX 0x00600F12; 8000_0001 ECX bit 2 set; 8000_0008 EAX 0x3030; 8000_000A EAX 1, EBX 0x10000, EDX 0x14FF)',
  ],
  notes: ['Piledriver (model 02h) is not measured here.'],
};
