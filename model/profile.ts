// CPU profiles: what CPUID reports and which behaviour switches the model follows.
//
// A profile (model/profiles/amd-*.ts) is what a real part of an AMD family reports, and the model's
// CPUID returns that table as it is: the model implements every SVM feature a profile reports
// (docs/model.md "Profiles"). Every behaviour switch of the SVM model derives from the CPUID table
// (svmSwitches), never from the profile's name; a feature is hidden for one boot by taking it out of
// CPUID (withoutFeatures, withSvmEdx), as a VMM hides it from a guest.

import { CPUID_EXT_ECX, CPUID_LEAF, CPUID_SVM_EDX } from '../arch/cpuid.ts';
import type { CpuidLeaf, Profile } from './profiles/cpuid.ts';
import { SVM_EDX_BITS, cpuidKey, svmEdxNames } from './profiles/cpuid.ts';
import { AMD_19H, findProfile, PROFILES, profileNames } from './profiles/index.ts';

export type { CpuidLeaf, Profile, ProfileBasis } from './profiles/cpuid.ts';
export { signature, svmEdxNames } from './profiles/cpuid.ts';
export { PROFILES, findProfile, profileNames };

/** The default profile: AMD family 19h (Zen 3/4). */
export const DEFAULT_PROFILE: Profile = AMD_19H;

const ZERO: CpuidLeaf = Object.freeze({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
const SVM_BIT = 1 << CPUID_EXT_ECX.SVM;

/** What the real part reports for a leaf (the profile's table; absent leaves read 0). */
export function hardwareCpuid(p: Profile, leaf: number, subleaf: number): CpuidLeaf {
  const key = cpuidKey(leaf);
  return p.cpuid[`${key}.${subleaf}`] ?? p.cpuid[key] ?? ZERO;
}

/**
 * What the model's CPUID instruction returns: the part's own table. (The model implements every
 * SVM feature a profile reports; features are hidden per boot with withoutFeatures.)
 */
export function cpuidOf(p: Profile, leaf: number, subleaf: number): CpuidLeaf {
  return hardwareCpuid(p, leaf, subleaf);
}

type Read = (leaf: number) => CpuidLeaf;

function featuresFrom(read: Read): Record<'svm' | 'npt' | 'nrips', boolean> {
  const svm = (read(CPUID_LEAF.EXT_FEATURES).ecx & SVM_BIT) !== 0;
  const edx = svm ? read(CPUID_LEAF.SVM).edx : 0;
  return { svm, npt: (edx & (1 << CPUID_SVM_EDX.NP)) !== 0, nrips: (edx & (1 << CPUID_SVM_EDX.NRIPS)) !== 0 };
}

/**
 * The SVM features the model offers under a profile (from what its CPUID presents; APM vol. 2
 * 15.4; docs/svm-rules.md "VMCB offsets" for the MSR and CPUID bits): what the model backend can offer to cases, and which cases
 * the generator holds to the model's instruction list.
 */
export function profileFeatures(p: Profile): Record<'svm' | 'npt' | 'nrips', boolean> {
  return featuresFrom((leaf) => cpuidOf(p, leaf, 0));
}

/** The SVM features the real part has (the profile's own CPUID, whatever the model implements). */
export function hardwareFeatures(p: Profile): Record<'svm' | 'npt' | 'nrips', boolean> {
  return featuresFrom((leaf) => hardwareCpuid(p, leaf, 0));
}

/**
 * Behaviour switches of the SVM model, all derived from CPUID 8000_0001 / 8000_000A (never stated
 * twice). `svm` false means every other switch is false too.
 */
export interface SvmSwitches {
  svm: boolean;
  /** 8000_000A EAX[7:0]. */
  revision: number;
  /** 8000_000A EBX: number of ASIDs (ASID 0 is the host's). */
  asids: number;
  nestedPaging: boolean;
  lbrVirt: boolean;
  svmLock: boolean;
  /** next_rip is written on #VMEXIT (docs/svm-rules.md "next_rip"); without it the field is unspecified. */
  nrips: boolean;
  tscRate: boolean;
  vmcbClean: boolean;
  flushByAsid: boolean;
  /** EXITINFO1 of INTn / MOV CRx / … and the instruction bytes of #NPF / #PF exits. */
  decodeAssists: boolean;
  pauseFilter: boolean;
  pauseFilterThreshold: boolean;
  avic: boolean;
  vmsaveVirt: boolean;
  vgif: boolean;
  vnmi: boolean;
}

function switchesFrom(read: Read): SvmSwitches {
  const svm = (read(CPUID_LEAF.EXT_FEATURES).ecx & SVM_BIT) !== 0;
  const a = svm ? read(CPUID_LEAF.SVM) : ZERO;
  const has = (bit: number) => ((a.edx >>> bit) & 1) === 1;
  const b = SVM_EDX_BITS;
  return {
    svm,
    revision: a.eax & 0xff,
    asids: a.ebx >>> 0,
    nestedPaging: has(b.NP),
    lbrVirt: has(b.LBRV),
    svmLock: has(b.SVML),
    nrips: has(b.NRIPS),
    tscRate: has(b.TSC_RATE),
    vmcbClean: has(b.VMCB_CLEAN),
    flushByAsid: has(b.FLUSH_BY_ASID),
    decodeAssists: has(b.DECODE_ASSISTS),
    pauseFilter: has(b.PAUSE_FILTER),
    pauseFilterThreshold: has(b.PAUSE_FILTER_THRESHOLD),
    avic: has(b.AVIC),
    vmsaveVirt: has(b.VMSAVE_VIRT),
    vgif: has(b.VGIF),
    vnmi: has(b.VNMI),
  };
}

/** The switches the model follows under a profile (from what its CPUID presents). */
export function svmSwitches(p: Profile): SvmSwitches {
  return switchesFrom((leaf) => cpuidOf(p, leaf, 0));
}

/** The switches of the real part (for listings, and for comparing a hardware run with its family). */
export function hardwareSvmSwitches(p: Profile): SvmSwitches {
  return switchesFrom((leaf) => hardwareCpuid(p, leaf, 0));
}

/** The profile named `name`; throws with the list of names when there is none. */
export function profileByName(name: string): Profile {
  const p = findProfile(name);
  if (!p) throw new Error(`unknown profile ${name} (known: ${profileNames().join(', ')})`);
  return p;
}

/** The names of the SVM features a profile's part reports (8000_000A EDX), for listings. */
export function svmFeatureNames(p: Profile): string[] {
  return hardwareFeatures(p).svm ? svmEdxNames(hardwareCpuid(p, CPUID_LEAF.SVM, 0).edx) : [];
}

/**
 * A profile with SVM features hidden from CPUID (8000_000A EDX; svm: 8000_0001 ECX), as a VMM
 * hides them from a guest's CPUID. Every behaviour switch derives from CPUID, so the model then
 * behaves as a part without the feature — the model's counterpart of `-cpu host,-nrip-save`
 * (issue "scenarios": "NRIPS on/off, a profile switch for the model").
 */
export function withoutFeatures(p: Profile, hide: ReadonlyArray<'svm' | 'npt' | 'nrips'>): Profile {
  if (hide.length === 0) return p;
  const cpuid = { ...p.cpuid };
  const clear = (key: string, reg: 'ecx' | 'edx', mask: number) => {
    const leaf = cpuid[key];
    if (leaf) cpuid[key] = { ...leaf, [reg]: (leaf[reg] & ~mask) >>> 0 };
  };
  for (const f of hide) {
    if (f === 'svm') clear(cpuidKey(CPUID_LEAF.EXT_FEATURES), 'ecx', SVM_BIT);
    if (f === 'npt') clear(cpuidKey(CPUID_LEAF.SVM), 'edx', 1 << CPUID_SVM_EDX.NP);
    if (f === 'nrips') clear(cpuidKey(CPUID_LEAF.SVM), 'edx', 1 << CPUID_SVM_EDX.NRIPS);
  }
  return { ...p, name: `${p.name}${hide.map((f) => `-${f}`).join('')}`, cpuid };
}

/**
 * A profile whose CPUID 8000_000A EDX keeps only the bits of `shown`, as a VMM (or an emulator's
 * fixed CPU model) that offers a subset of the part's SVM features. Every behaviour switch follows
 * CPUID, so the model then behaves as that subset says: e.g. amd-17h as Bochs' `ryzen` model
 * shows it (EDX 0x44f: no decode assists, so EXITINFO1 of an INTn intercept is not written).
 */
export function withSvmEdx(p: Profile, shown: number): Profile {
  const key = cpuidKey(CPUID_LEAF.SVM);
  const leaf = p.cpuid[key];
  if (!leaf) return p;
  const edx = (leaf.edx & shown) >>> 0;
  if (edx === leaf.edx) return p;
  return { ...p, name: `${p.name}(edx=0x${edx.toString(16)})`, cpuid: { ...p.cpuid, [key]: { ...leaf, edx } } };
}
