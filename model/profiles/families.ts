// CPU family detection: from what CPUID leaf 1 says (vendor, family, model, stepping) to a family
// name (K10, Bulldozer family, Zen 4, …) and the model profile a run on that CPU is compared with.
// One table, one row per (vendor, family, model range), each with its source. The publishing
// matrix groups results by the row a run's CPU falls in (report/publish.ts), and `svmconf record`
// files hardware records under its slug (expected/hw/<slug>/).
//
// Decoding of CPUID Fn0000_0001 EAX follows APM vol. 3 (pub. 24594) appendix E.3.2 "Processor
// signature": Family = BaseFamily + (BaseFamily == 0Fh ? ExtFamily : 0), Model = BaseModel |
// (BaseFamily == 0Fh ? ExtModel << 4 : 0). (Intel also uses ExtModel for family 6; the suite is
// about AMD, so the AMD rule is the one kept.)

import { findProfile } from './index.ts';

export const VENDOR_AMD = 'AuthenticAMD';
export const VENDOR_HYGON = 'HygonGenuine';

export interface CpuSignature {
  vendor: string;
  family: number;
  model: number;
  stepping: number;
}

/** The fields of CPUID Fn0000_0001 EAX, raw and combined. */
export interface DecodedSignature {
  stepping: number;
  baseModel: number;
  baseFamily: number;
  extModel: number;
  extFamily: number;
  /** Displayed family (base + extended when base is 0Fh). */
  family: number;
  /** Displayed model (extended << 4 | base when base family is 0Fh). */
  model: number;
}

export function decodeCpuidSignature(eax: number): DecodedSignature {
  const v = eax >>> 0;
  const stepping = v & 0xf;
  const baseModel = (v >>> 4) & 0xf;
  const baseFamily = (v >>> 8) & 0xf;
  const extModel = (v >>> 16) & 0xf;
  const extFamily = (v >>> 20) & 0xff;
  const extended = baseFamily === 0xf;
  return {
    stepping, baseModel, baseFamily, extModel, extFamily,
    family: baseFamily + (extended ? extFamily : 0),
    model: extended ? (extModel << 4) | baseModel : baseModel,
  };
}

/** One row of the family table. */
export interface FamilyRow {
  vendor: string;
  family: number;
  /** Inclusive model ranges of the row. */
  models: ReadonlyArray<readonly [number, number]>;
  /** Microarchitecture, e.g. `Zen 4`. */
  name: string;
  /** Example parts, for people. */
  parts: string;
  /** The model profile (model/profiles/) a run on such a CPU is compared with. */
  profile: string;
  /** Why that profile when it is not of the row's own family (there is no profile of that family). */
  profileNote?: string;
  source: string;
}

// The Zen rows follow Linux's own classification, which AMD engineers maintain.
const LINUX_ZEN = 'Linux arch/x86/kernel/cpu/amd.c bsp_init_amd() "Figure out Zen generations" (X86_FEATURE_ZEN1…ZEN6 model ranges, as of "x86/CPU/AMD: Extend Zen6 model range", 2025-10-29)';
const NEAREST_NO_NRIPS = 'no profile of this family: amd-10h, the nearest part with SVM and nested paging but without NRIPS';
const NEAREST_NRIPS = 'no profile of this family: amd-15h, the nearest pre-Zen part with NRIPS and decode assists';

/** Oldest family first. Ranges within a family do not overlap (test/families.spec.ts checks). */
export const FAMILY_TABLE: readonly FamilyRow[] = [
  {
    vendor: VENDOR_AMD, family: 0x0f, models: [[0x40, 0xff]], name: 'K8 (rev. F/G)', parts: 'Athlon 64 X2 (AM2), Opteron 2200/8200',
    profile: 'amd-10h', profileNote: NEAREST_NO_NRIPS,
    source: 'AMD BKDG for AMD NPT Family 0Fh Processors, pub. 32559 (revision F and later: SVM); QEMU target/i386/cpu.c `qemu64` (family 15, model 107) is in this range',
  },
  {
    vendor: VENDOR_AMD, family: 0x10, models: [[0x00, 0xff]], name: 'K10', parts: 'Opteron "Barcelona"/"Shanghai"/"Istanbul", Phenom, Phenom II',
    profile: 'amd-10h', source: 'AMD BKDG for AMD Family 10h Processors, pub. 31116; revision guide pub. 41322',
  },
  {
    vendor: VENDOR_AMD, family: 0x11, models: [[0x00, 0xff]], name: 'K8-derived mobile (family 11h)', parts: 'Turion X2 Ultra "Griffin"',
    profile: 'amd-10h', profileNote: NEAREST_NO_NRIPS, source: 'AMD BKDG for AMD Family 11h Processors, pub. 41256',
  },
  {
    vendor: VENDOR_AMD, family: 0x12, models: [[0x00, 0xff]], name: 'K10-derived APU (family 12h)', parts: 'A-series "Llano"',
    profile: 'amd-10h', profileNote: 'a K10 core: compared with the K10 profile', source: 'AMD BKDG for AMD Family 12h Processors, pub. 41131',
  },
  {
    vendor: VENDOR_AMD, family: 0x14, models: [[0x00, 0xff]], name: 'Bobcat', parts: 'E-350, C-50 "Zacate"/"Ontario"',
    profile: 'amd-15h', profileNote: NEAREST_NRIPS, source: 'AMD BKDG for AMD Family 14h Models 00h-0Fh Processors, pub. 43170',
  },
  {
    vendor: VENDOR_AMD, family: 0x15, models: [[0x00, 0x0f]], name: 'Bulldozer family (Bulldozer, Piledriver)', parts: 'FX-8150 (model 01h), FX-8350 (model 02h), Opteron 6200/6300',
    profile: 'amd-15h', source: 'AMD BKDG for AMD Family 15h Models 00h-0Fh Processors, pub. 42301',
  },
  {
    vendor: VENDOR_AMD, family: 0x15, models: [[0x10, 0x1f]], name: 'Piledriver', parts: 'A10-5800K "Trinity", A10-6800K "Richland"',
    profile: 'amd-15h', source: 'AMD BKDG for AMD Family 15h Models 10h-1Fh Processors, pub. 42300',
  },
  {
    vendor: VENDOR_AMD, family: 0x15, models: [[0x30, 0x3f]], name: 'Steamroller', parts: 'A10-7850K "Kaveri"',
    profile: 'amd-15h', source: 'AMD BKDG for AMD Family 15h Models 30h-3Fh Processors, pub. 49125',
  },
  {
    vendor: VENDOR_AMD, family: 0x15, models: [[0x60, 0x7f]], name: 'Excavator', parts: 'A10-8700P "Carrizo", A9-9400 "Stoney Ridge"',
    profile: 'amd-15h', source: 'AMD BKDG for AMD Family 15h Models 60h-6Fh Processors, pub. 50742; Models 70h-7Fh, pub. 55072',
  },
  {
    vendor: VENDOR_AMD, family: 0x16, models: [[0x00, 0x0f], [0x30, 0x3f]], name: 'Jaguar/Puma', parts: 'Athlon 5350 "Kabini", A8-6410 "Beema"',
    profile: 'amd-15h', profileNote: NEAREST_NRIPS, source: 'AMD BKDG for AMD Family 16h Models 00h-0Fh Processors, pub. 48751; Models 30h-3Fh, pub. 52740',
  },
  {
    vendor: VENDOR_AMD, family: 0x17, models: [[0x00, 0x2f], [0x50, 0x5f]], name: 'Zen / Zen+', parts: 'Ryzen 1000/2000, EPYC 7001 "Naples", Ryzen 3000G "Picasso"',
    profile: 'amd-17h', source: `${LINUX_ZEN}: ZEN1; PPR for AMD Family 17h Model 01h, pub. 54945`,
  },
  {
    vendor: VENDOR_AMD, family: 0x17, models: [[0x30, 0x4f], [0x60, 0x7f], [0x90, 0x91], [0xa0, 0xaf]], name: 'Zen 2', parts: 'EPYC 7002 "Rome" (31h), Ryzen 3000 "Matisse" (71h), Ryzen 4000 "Renoir" (60h)',
    profile: 'amd-17h', source: `${LINUX_ZEN}: ZEN2`,
  },
  {
    vendor: VENDOR_HYGON, family: 0x18, models: [[0x00, 0xff]], name: 'Hygon Dhyana (Zen)', parts: 'Hygon C86',
    profile: 'amd-17h', profileNote: 'a licensed Zen 1 core', source: 'Linux arch/x86/kernel/cpu/hygon.c (family 18h, vendor HygonGenuine)',
  },
  {
    vendor: VENDOR_AMD, family: 0x19, models: [[0x00, 0x0f], [0x20, 0x5f]], name: 'Zen 3', parts: 'EPYC 7003 "Milan" (01h), Ryzen 5000 "Vermeer" (21h), Ryzen 6000 "Rembrandt" (44h, Zen 3+)',
    profile: 'amd-19h', source: `${LINUX_ZEN}: ZEN3; PPR for AMD Family 19h Model 01h, pub. 55898`,
  },
  {
    vendor: VENDOR_AMD, family: 0x19, models: [[0x10, 0x1f], [0x60, 0xaf]], name: 'Zen 4', parts: 'EPYC 9004 "Genoa" (11h), Ryzen 7000 "Raphael" (61h), EPYC 97x4 "Bergamo" (A0h)',
    profile: 'amd-19h', source: `${LINUX_ZEN}: ZEN4; PPR for AMD Family 19h Model 11h, pub. 55901`,
  },
  {
    vendor: VENDOR_AMD, family: 0x1a, models: [[0x00, 0x2f], [0x40, 0x4f], [0x60, 0x7f]], name: 'Zen 5', parts: 'EPYC 9005 "Turin" (02h, 11h), Ryzen AI 300 "Strix Point" (24h), Ryzen 9000 "Granite Ridge" (44h)',
    profile: 'amd-1ah', source: `${LINUX_ZEN}: ZEN5`,
  },
  {
    vendor: VENDOR_AMD, family: 0x1a, models: [[0x50, 0x5f], [0x80, 0xaf], [0xc0, 0xcf]], name: 'Zen 6', parts: '(announced)',
    profile: 'amd-1ah', profileNote: 'no Zen 6 profile yet: compared with the Zen 5 profile', source: `${LINUX_ZEN}: ZEN6`,
  },
];

/** What the table says about one CPU. */
export interface CpuFamily {
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  /** `Zen 4`, or `family 19h model C0h (not in the table)`. */
  name: string;
  /** Directory-safe key of the family row: `19h-zen-4`; `19h-unknown` outside the table. */
  slug: string;
  /** The profile to compare with (undefined: nothing fits, e.g. another vendor). */
  profile: string | undefined;
  /** Why: the row's source, or why nothing matched. */
  source: string;
  profileNote?: string;
  /** The row matched (false: only the family number, or nothing, is known). */
  known: boolean;
}

export const hex2 = (n: number): string => n.toString(16).toUpperCase().padStart(2, '0');

export function slugify(s: string): string {
  return s.toLowerCase().replace(/\+/g, 'plus').replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
}

/** The table row of a CPU, if any. */
export function familyRow(sig: CpuSignature): FamilyRow | undefined {
  return FAMILY_TABLE.find((r) => r.vendor === sig.vendor && r.family === sig.family && r.models.some(([lo, hi]) => sig.model >= lo && sig.model <= hi));
}

/**
 * Classify a CPU. A model outside every range of a known family still gets that family's profile
 * (the newest row of the family), named as unknown so the matrix does not claim a generation.
 */
export function classifyCpu(sig: CpuSignature): CpuFamily {
  const base = { vendor: sig.vendor, family: sig.family, model: sig.model, stepping: sig.stepping };
  const row = familyRow(sig);
  if (row) {
    return {
      ...base, name: row.name, slug: `${hex2(row.family).toLowerCase()}h-${slugify(row.name)}`, profile: row.profile, source: row.source,
      ...(row.profileNote ? { profileNote: row.profileNote } : {}), known: true,
    };
  }
  const sameFamily = FAMILY_TABLE.filter((r) => r.vendor === sig.vendor && r.family === sig.family);
  const fam = sig.family >= 0 ? `${hex2(sig.family)}h` : '?';
  const name = `family ${fam} model ${sig.model >= 0 ? `${hex2(sig.model)}h` : '?'} (not in the family table)`;
  const slug = `${sig.family >= 0 ? hex2(sig.family).toLowerCase() : 'x'}h-unknown`;
  const last = sameFamily[sameFamily.length - 1];
  if (last) {
    return { ...base, name, slug, profile: last.profile, source: `model not in the table; family ${fam} rows compare with ${last.profile}`, known: false };
  }
  const why = sig.vendor === VENDOR_AMD || sig.vendor === VENDOR_HYGON ? `family ${fam} is not in the table` : `vendor ${sig.vendor} is not AMD: no SVM profile`;
  return { ...base, name, slug: sig.vendor === VENDOR_AMD || sig.vendor === VENDOR_HYGON ? slug : `${slugify(sig.vendor) || 'unknown'}-${slug}`, profile: undefined, source: why, known: false };
}

/** The family a profile itself describes (its own signature through the table). */
export function profileFamily(name: string): CpuFamily | undefined {
  const p = findProfile(name);
  return p ? classifyCpu({ vendor: p.vendor, family: p.family, model: p.model, stepping: p.stepping }) : undefined;
}

/** `Zen 4 (family 19h model 11h stepping 1)`. */
export function familyLabel(f: Pick<CpuFamily, 'name' | 'family' | 'model' | 'stepping' | 'known'>): string {
  if (!f.known) return f.name;
  return `${f.name} (family ${hex2(f.family)}h model ${hex2(f.model)}h stepping ${f.stepping})`;
}
