// AMD family 19h model 11h (Zen 4: EPYC 9004 "Genoa"): the default profile, the family of the
// machine the suite was developed on.

import { amdLeaves, svmEdx, type Profile } from './cpuid.ts';

export const AMD_19H: Profile = {
  name: 'amd-19h',
  title: 'AMD family 19h model 11h stepping 1 (Zen 4: EPYC 9004 "Genoa"); Zen 3 (model 01h, "Milan") has the same SVM core set',
  vendor: 'AuthenticAMD',
  family: 0x19,
  model: 0x11,
  stepping: 1,
  basis: 'assembled',
  cpuid: amdLeaves({
    family: 0x19, model: 0x11, stepping: 1,
    maxStd: 0x10, maxExt: 0x80000021,
    addressSizes: 0x3030,
    asids: 0x8000,
    svmEdx: svmEdx(['NP', 'LBRV', 'SVML', 'NRIPS', 'TSC_RATE', 'VMCB_CLEAN', 'FLUSH_BY_ASID', 'DECODE_ASSISTS',
      'PAUSE_FILTER', 'PAUSE_FILTER_THRESHOLD', 'AVIC', 'VMSAVE_VIRT', 'VGIF', 'X2AVIC', 'SPEC_CTRL', 'VNMI', 'SVME_ADDR_CHK']),
    ext21Eax: 1 << 6, // NullSelectClearsBase (segmentation.ts)
  }),
  sources: [
    'AMD PPR for AMD Family 19h Model 11h, Revision B1 Processors, pub. 55901: CPUID_Fn8000000A, CPUID_Fn80000021',
    'AMD64 Architecture Programmer\'s Manual vol. 3, pub. 24594, appendix E (CPUID Fn8000_000A_EDX bit names)',
    'QEMU target/i386/cpu.c EPYC-Genoa (family 25, model 17; FEAT_SVM NPT|NRIPSAVE|VNMI|SVME_ADDR_CHK; 8000_0021 EAX NULL_SEL_CLR_BASE); QEMU offers only what KVM can nest, so it is a subset',
    'Linux arch/x86/include/asm/cpufeatures.h word 15 and the /proc/cpuinfo flags of EPYC 9004 parts (npt lbrv svm_lock nrip_save tsc_scale vmcb_clean flushbyasid decodeassists pausefilter pfthreshold avic v_vmsave_vmload vgif x2avic v_spec_ctrl vnmi)',
    'this machine: an EPYC family 19h model 11h virtual machine (/proc/cpuinfo: 48 bits physical, 48 bits virtual)',
  ],
  notes: [
    '8000_000A EDX is assembled from named features, not dumped: bits nobody names publicly (bit 11 is set on Zen 1) are left clear.',
    '8000_0008 EAX stays 48/48 bits (as on the VMs the suite runs on); bare-metal Genoa reports more (52 physical bits, 57 linear with LA57, which the model does not implement).',
    '8000_0000 EAX stops at 8000_0021h, the highest leaf the model consults.',
  ],
};
