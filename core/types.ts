// The data that flows between the stages:
//   templates → generator (Template, Case, Kernel) → runner (CaseResult) → report (Results).
// Every stage imports these shapes from here and nothing from a later stage.

/** Width of a record field in bytes, as declared in a template's front matter. */
export type FieldType = 'u8' | 'u16' | 'u32' | 'u64';

/**
 * How the report decodes a field for humans. Purely presentational: comparison is byte for byte.
 *   hex       plain number
 *   vector    an interrupt vector (#BP, #PF, …)
 *   exitcode  a VMCB EXITCODE (VMEXIT_*)
 *   eventinfo an EVENTINJ / EXITINTINFO value (V, TYPE, EV, VECTOR)
 *   rflags    RFLAGS bits
 *   offset    a signed distance from a label (RIPs are recorded this way)
 *   selector  a segment selector
 *   count     a small count
 *   bool      0 or 1
 */
export type FieldDecode =
  | 'hex' | 'vector' | 'exitcode' | 'eventinfo' | 'rflags' | 'offset' | 'selector' | 'count' | 'bool';

/**
 * What an SVM record field holds, so the model can say which of its bits the manual defines in the
 * case's situation (model/svm/masks.ts has the rules): the VMCB exit fields, the guest RIP saved on
 * #VMEXIT, INT_STATE, EVENTINJ after the exit, the RIP pushed for a trap-like injected event, a
 * RIP the manual leaves ambiguous, a #PF error code of an IDT read from CPL 3.
 */
export type FieldRole =
  | 'exit_code' | 'exit_info_1' | 'exit_info_2' | 'exit_int_info' | 'exit_int_info_err' | 'next_rip'
  | 'vmcb_rip' | 'int_state' | 'event_inj' | 'injected_return_rip' | 'ambiguous_return_rip' | 'idt_pf_error_code'
  | 'handler_vector' | 'handler_rip';
export const FIELD_ROLES: readonly FieldRole[] = [
  'exit_code', 'exit_info_1', 'exit_info_2', 'exit_int_info', 'exit_int_info_err', 'next_rip',
  'vmcb_rip', 'int_state', 'event_inj', 'injected_return_rip', 'ambiguous_return_rip', 'idt_pf_error_code',
  'handler_vector', 'handler_rip',
];

/** A field-level rule on top of the role: defined always (default), only with NRIPS, or never. */
export type DefinedWhen = 'always' | 'nrips' | 'never';
export const DEFINED_WHEN: readonly DefinedWhen[] = ['always', 'nrips', 'never'];

export interface RecordField {
  name: string;
  type: FieldType;
  /** Byte offset in the record, computed from the declaration order (fields are packed). */
  offset: number;
  size: number;
  decode: FieldDecode;
  doc: string;
  /** Front matter `role:` (FieldRole): which defined-bits rule applies. */
  role?: FieldRole;
  /** Front matter `defined_when:`. */
  definedWhen?: DefinedWhen;
}

/** A CPU feature a case can require. `!name` in front matter means: must be absent. */
export type Feature = 'svm' | 'npt' | 'nrips';
export const FEATURES: readonly Feature[] = ['svm', 'npt', 'nrips'];

/** CPU features a kernel's boot must present to the guest: true = present, false = hidden. */
export type CpuConfig = Partial<Record<Feature, boolean>>;

export interface Requirement {
  feature: Feature;
  present: boolean;
}

export interface Template {
  /** Dotted id, e.g. `svm.inject.softint`; the prefix of every case id. */
  id: string;
  title: string;
  checks: string;
  /** Absolute path of the .S.hbs file. */
  file: string;
  /** Path shown to users (relative to the template root it came from). */
  displayPath: string;
  /** 1-based line of the front matter's `id:` (for errors about the id); absent in hand-made templates. */
  idLine?: number;
  /** 1-based line in `file` where the assembly body starts (after the front matter). */
  bodyLine: number;
  body: string;
  requires: Requirement[];
  /** Parameters whose on/off value selects a CPU feature (e.g. `nrips`). */
  featureParams: Feature[];
  /** Parameter names in declaration order, with their values as written. */
  matrix: Array<{ name: string; values: string[] }>;
  /** Partial parameter maps removed from the product: a case is removed when, for every key of
   *  one exclusion, its value is one of the values listed (front matter may give one value or a list). */
  exclude: Array<Record<string, string[]>>;
  record: RecordField[];
  recordSize: number;
}

export interface Case {
  /** `<template id>/<k=v,…>` in matrix order; `<template id>` alone when the matrix is empty. */
  id: string;
  template: Template;
  params: Record<string, string>;
  /** Template requirements plus those implied by feature parameters. */
  requires: Requirement[];
}

/** One bootable kernel that runs a batch of cases in order. */
export interface Kernel {
  /** Stable id: `<template id>#<n>` (n counts batches of the template). */
  id: string;
  cases: Case[];
  /** Features every case of this kernel needs shown (true) or hidden (false) by the backend. */
  cpu: CpuConfig;
  /** Multiboot ELF32 image (QEMU -kernel, GRUB, native KVM, model). */
  elf: string;
  /** Flat image to load at KERNEL_LOAD_ADDR (the Bochs backend puts it on its floppy). */
  bin: string;
  /** Symbol map of the linked image, for diagnostics. */
  map: string;
}

/**
 * Status of one case on one backend.
 *   OK          the kernel emitted a valid record
 *   SKIP        the kernel decided not to run it (reason from the kernel)
 *   CRASH       unexpected exception in L1, triple fault, emulator/VMM failure
 *   TIMEOUT     no progress within the time limit
 *   ERROR       no valid record (bad CRC, truncated line, missing END, unexpected case id…)
 *   UNSUPPORTED the backend cannot provide what the case requires (reason says what)
 */
export type Status = 'OK' | 'SKIP' | 'CRASH' | 'TIMEOUT' | 'ERROR' | 'UNSUPPORTED';

export interface CaseResult {
  status: Status;
  /** Lower-case hex of the record bytes (OK), or of the crash record (CRASH reported by the kernel). */
  record?: string;
  reason?: string;
  /**
   * Defined-bits mask of the record (lower-case hex, the record's length; bit set = the manual
   * defines it in this case's situation). Given by the model (model/svm/masks.ts); absent = every
   * bit is defined. The report compares only these bits strictly.
   */
  mask?: string;
  /** Seconds spent in the boot that produced this result, divided among its cases. */
  seconds?: number;
  /** How the boot that produced it ran, when the backend says (BootResult.note), e.g. `torture: 57 restores …`. */
  note?: string;
  /** The torture counts of the boot that produced it (BootResult.torture), with `--torture`. */
  torture?: TortureCounts;
  /**
   * CPUID Fn8000_000A EDX (the SVM feature bits: NRIPS, decode assists, …) as the kernel of the
   * boot that produced this result read it, 8 hex digits (its `SVMCONF CPUID` line,
   * docs/protocol.md); absent when the kernel printed none (logs of older kernels). The report
   * judges the record on the bits the manual defines under these features (report/compare.ts).
   */
  cpuidSvmEdx?: string;
  /**
   * Set by the model when the manual leaves this case's outcome open (e.g. EVENTINJ #OF into a
   * 64-bit guest): why. The record is then compared on no bit, and the matrix says `open`.
   */
  open?: string;
}

/**
 * What `--torture` did in one boot of the native KVM runner (native/kvm/state.c, its status line):
 * the same numbers as the human `note`, as data for the run summary and for results.json readers.
 */
export interface TortureCounts {
  /** Save/restore cycles; in a control run (`control`) the forced exits, with no save/restore. */
  restores: number;
  /** Cycles at exits to user space, and at the timer's signals. */
  atExits: number;
  atTimer: number;
  /** One exit in `every` was tortured (--torture-every; 1: every exit). */
  every: number;
  /** --torture-control: the cycles stopped before the save. */
  control: boolean;
  /** Some cycle ran while the vCPU was in guest mode (L2). */
  inL2: boolean;
  /** MSRs KVM would not restore, left out of the restore. */
  msrsLeftOut: string[];
}

/**
 * What a backend's records are (set by its probe): the reference model (any profile, under the
 * virtual L0 or not), an emulator (QEMU TCG, Bochs, KVM on QEMU's emulated CPU), or a real CPU (KVM
 * on this host, a machine behind a console). The report files runs and columns by it.
 */
export type BackendKind = 'model' | 'emulator' | 'hardware';
export const BACKEND_KINDS: readonly BackendKind[] = ['model', 'emulator', 'hardware'];

export interface BackendInfo {
  name: string;
  kind: BackendKind;
  available: boolean;
  reason: string;
  /** What the backend can offer to cases; absent features come with the reason why. */
  features: Record<Feature, { present: boolean; absent: boolean; reason: string }>;
  version?: string;
  /**
   * The backend this column is a version of, the name the deviation registry uses
   * (expected/deviations.yaml `backend`): `qemu-tcg` for the column `qemu-tcg@11.1`. Absent: the
   * name up to any `@` (core/columns.ts familyOf).
   */
  family?: string;
  /** The pinned peer the column runs (runner/peers/pins.yaml name, `qemu@11.1`); absent for the host's own packages. */
  peer?: string;
  /** The exact Debian package versions the column runs (package → version), where known. */
  packages?: Record<string, string>;
  /**
   * The emulator whose CPU the column's guest runs on, for a hypervisor inside an emulator (kvm-tcg:
   * `{ family: 'qemu-tcg', version: 'QEMU 11.1.3' }`): that emulator's registry entries that say
   * they show through (`shows_through`) apply to the column too.
   */
  emulator?: { family: string; version: string };
  /**
   * The backend this column's records are compared with, when not the run's reference (`model`):
   * a Bochs flavour is compared with the model under the profile of its CPU family
   * (`model@amd-17h`), and that model column names itself (report/compare.ts, groups).
   */
  reference?: string;
  /**
   * The CPU whose behaviour this backend's records show, and its family (model/profiles/families.ts):
   * the host's for kvm, the emulated CPU model for qemu-tcg, the profile for the model, the machine's
   * (when given) for console. Absent in results written before CPU family detection.
   */
  cpu?: CpuIdentity;
}

/** A CPU as results.json records it: the signature, where it was read, and what the family table makes of it. */
export interface CpuIdentity {
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  modelName?: string;
  /** Microcode revision as the OS reports it (`0xa101148`), where readable. */
  microcode?: string;
  /** Where the signature comes from: `host /proc/cpuinfo`, `QEMU -cpu qemu64`, `profile amd-19h`, `--machine-cpu`. */
  source: string;
  /** Family-table name (`Zen 4`) and slug (`19h-zen-4`). */
  familyName: string;
  familySlug: string;
  /** The model profile the family is compared with (absent: no profile fits). */
  profile?: string;
}

export interface HostInfo {
  vendor: string;
  family: number;
  model: number;
  stepping: number;
  modelName: string;
  kernel: string;
  /** /proc/cpuinfo `microcode` (absent where the OS does not show it, e.g. in many VMs). */
  microcode?: string;
}

export interface CaseOutcome {
  id: string;
  template: string;
  params: Record<string, string>;
  results: Record<string, CaseResult>;
}

/**
 * A deviation-registry entry (expected/deviations.yaml) that explained differences of one case:
 * `backend` is the backend the entry is about (the one off the manual), `against` the backend it
 * was compared with, `fields` the record fields explained.
 */
export interface DeviationMatch {
  id: string;
  backend: string;
  against: string;
  fields: string[];
}

/** The contract of out/results.json (docs/results.md "results.json (`svmconf-results/1`)"). */
export interface Results {
  schema: 'svmconf-results/1';
  generated: string;
  host: HostInfo;
  backends: BackendInfo[];
  /** Record layouts per template, so tools can decode records without the templates. */
  layouts: Record<string, RecordField[]>;
  cases: CaseOutcome[];
  /** Case id → the registry entries that explained its differences (only cases with any). */
  deviations?: Record<string, DeviationMatch[]>;
  /** temp=cold / temp=warm twins compared on each backend (report/warmcold.ts); only with such pairs. */
  warmCold?: WarmColdSummary;
  /** Set when a signal stopped the run: what finished is here, the rest is ERROR "not run". */
  interrupted?: string;
}

/** A cold case and its warm twin whose results differ on one backend (report/warmcold.ts). */
export interface WarmColdDisagreement {
  cold: string;
  warm: string;
  backend: string;
  /** What differs: the statuses, or the defined record fields. */
  why: string;
}

export interface WarmColdSummary {
  /** Cold cases with a warm twin. */
  pairs: number;
  /** Pair × backend comparisons made (both results present, not both UNSUPPORTED). */
  compared: number;
  disagreements: WarmColdDisagreement[];
}
