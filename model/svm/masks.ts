// Defined-bits masks (docs/architecture.md "Comparison"; docs/svm-rules.md "Defined bits per field"): for each field of a case's record,
// the bits the manual defines in the situation the record shows. A pure function of the template's
// field roles (front matter `role:` / `defined_when:`), the model's own record values and the
// profile. The report compares the defined bits strictly and shows differences elsewhere as
// informational (≈).
//
// Rules by role (docs/svm-rules.md "Mask: <role>"; APM vol. 2 15.6–15.7, 15.12, 15.20, 15.25.6):
//   exit_code       every bit.
//   exit_info_1     VMEXIT_INVALID, SHUTDOWN: none. #DF, #TS: none ("EXITINFO1 and EXITINFO2 undefined").
//                   Other exceptions: the error code (all bits) for vectors that push one, none
//                   otherwise. SWINT (0x75) and CR/DR accesses: all with decode assists, none without.
//                   IOIO: all but the segment field 12:10 without decode assists. MSR, NPF: all.
//                   Every other exit: none (the manual gives EXITINFO1 no meaning there).
//   exit_info_2     #PF (faulting address), NPF (guest-physical address), IOIO (next RIP): all; else none.
//   exit_int_info   VMEXIT_INVALID, SHUTDOWN: none. V = 0: bit 31 only (15.7.3 only clears V).
//                   V = 1: bits 31:0, and the error code half 63:32 only when EV = 1.
//   exit_int_info_err  the error code half as its own u32 field: as bits 63:32 above (needs an
//                   exit_int_info field in the record to know V and EV; else all).
//   next_rip        none without NRIPS, after VMEXIT_INVALID or SHUTDOWN, and for a #GP/#PF raised
//                   while delivering INT3's #BP (EXITINTINFO TYPE 3 vector 3: ambiguous, KVM treats
//                   next_rip as unusable there); else all (the value, or the 0 written for exits
//                   outside Table 15-7, is defined).
//   vmcb_rip        the guest RIP saved by #VMEXIT: none for #DF ("RIP undefined for #DF"), SHUTDOWN
//                   (VMCB state undefined) and VMEXIT_INVALID (no guest state written back).
//   int_state       none for SHUTDOWN; bit 0 (the shadow) undefined when the exit interrupted a
//                   delivery (EXITINTINFO.V = 1: the STI-shadow quirk of some parts); else all.
//   event_inj       every bit (every #VMEXIT clears the field).
//   injected_return_rip  the RIP pushed for a trap-like injected event (TYPE 4, TYPE 3 vectors 3/4):
//                   all with NRIPS, none without (15.20: "cannot be properly injected").
//   ambiguous_return_rip a RIP the manual leaves ambiguous in the template's situation: none.
//   idt_pf_error_code  a #PF error code for an IDT read from CPL 3: U/S (bit 2) undefined.
//   handler_vector  the vector of the guest handler whose frame the record shows: every bit; it
//                   decides the next two.
//   handler_rip     the RIP pushed in that handler's frame: every bit, none when the handler is #DF
//                   (APM vol. 2 §8.2.9: the CS:rIP a #DF saves is undefined). injected_return_rip
//                   follows the same #DF rule on top of its own.
// `defined_when: nrips` (fields without a role, or on top of one): none without NRIPS;
// `defined_when: never`: none. Fields without role or rule: every bit.

import type { DefinedWhen, FieldRole, RecordField } from '../../core/types.ts';
import { CPUID_SVM_EDX, EXIT, EVENTINJ, EVENT_TYPE, parseEventInfo } from '../../arch/svm.ts';
import { VEC, pushesErrorCode } from '../../arch/x86.ts';
import type { SvmSwitches } from '../profile.ts';

export type { DefinedWhen, FieldRole } from '../../core/types.ts';

/** What the masks depend on in the profile. */
export type MaskSwitches = Pick<SvmSwitches, 'nrips' | 'decodeAssists'>;

/**
 * The switches a kernel's CPUID offered, from CPUID Fn8000_000A EDX as it read it (APM vol. 2 15.4;
 * zero when CPUID reports no SVM). A backend's records are judged under what its own CPUID says:
 * a field the manual defines only with decode assists (15.8) or NRIPS (15.7.1) is not defined on a
 * part that does not report the feature, whatever the model's profile has.
 */
export function maskSwitchesFromSvmEdx(edx: number): MaskSwitches {
  const has = (bit: number): boolean => ((edx >>> bit) & 1) === 1;
  return { nrips: has(CPUID_SVM_EDX.NRIPS), decodeAssists: has(CPUID_SVM_EDX.DECODE_ASSISTS) };
}

/**
 * The mask of a record whose outcome the manual leaves open (CaseResult.open): no bit is defined.
 */
export function openRecordMask(record: string): string {
  return '00'.repeat(record.length / 2);
}

function readField(bytes: Uint8Array, f: Pick<RecordField, 'offset' | 'size'>): bigint | undefined {
  if (f.offset + f.size > bytes.length) return undefined;
  let v = 0n;
  for (let i = f.size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[f.offset + i]!);
  return v;
}

const ALL = -1n; // trimmed to the field's width by the caller
const NONE = 0n;

const isException = (code: bigint): boolean => code >= EXIT.EXCP_BASE && code < EXIT.EXCP_BASE + 32n;
const isCrDr = (code: bigint): boolean => code >= 0n && code < 0x40n;

function exitInfo1Mask(code: bigint | undefined, sw: MaskSwitches): bigint {
  if (code === undefined) return ALL;
  if (code === EXIT.INVALID || code === EXIT.SHUTDOWN) return NONE;
  if (isException(code)) {
    const v = Number(code - EXIT.EXCP_BASE);
    if (v === VEC.DF || v === VEC.TS) return NONE;
    return pushesErrorCode(v) ? ALL : NONE;
  }
  if (code === EXIT.SWINT || isCrDr(code)) return sw.decodeAssists ? ALL : NONE;
  if (code === EXIT.IOIO) return sw.decodeAssists ? ALL : ~0x1c00n;
  if (code === EXIT.MSR || code === EXIT.NPF) return ALL;
  return NONE;
}

function exitInfo2Mask(code: bigint | undefined): bigint {
  if (code === undefined) return ALL;
  return code === EXIT.EXCP_PF || code === EXIT.NPF || code === EXIT.IOIO ? ALL : NONE;
}

/** Bits 63:0 of EXITINTINFO that are defined, given its value. */
function exitIntInfoMask(code: bigint | undefined, info: bigint | undefined): bigint {
  if (code === EXIT.INVALID || code === EXIT.SHUTDOWN) return NONE;
  if (info === undefined) return ALL;
  const e = parseEventInfo(info);
  if (!e.valid) return EVENTINJ.V;
  return e.ev ? ALL : 0xffff_ffffn;
}

/** Was the exit a #GP/#PF raised while delivering INT3's #BP (EXITINTINFO V=1 TYPE=3 VEC=3)? */
function int3DeliveryFault(code: bigint | undefined, info: bigint | undefined): boolean {
  if (code !== EXIT.EXCP_GP && code !== EXIT.EXCP_PF) return false;
  if (info === undefined) return false;
  const e = parseEventInfo(info);
  return e.valid && e.type === EVENT_TYPE.EXCEPTION && e.vector === VEC.BP;
}

/** The defined bits of one field (as many bits as the field has). */
export function fieldMask(
  f: Pick<RecordField, 'size'> & { role?: FieldRole | undefined; definedWhen?: DefinedWhen | undefined },
  ctx: { exitCode: bigint | undefined; exitIntInfo: bigint | undefined; switches: MaskSwitches; handlerVector?: bigint | undefined },
): bigint {
  const full = (1n << BigInt(8 * f.size)) - 1n;
  const { exitCode: code, exitIntInfo: info, switches: sw } = ctx;
  // §8.2.9: a #DF's saved CS:rIP is undefined, whatever else the field's role says
  const dfFrame = ctx.handlerVector === BigInt(VEC.DF);
  if (f.definedWhen === 'never') return 0n;
  if (f.definedWhen === 'nrips' && !sw.nrips) return 0n;
  let m: bigint;
  switch (f.role) {
    case undefined: case 'exit_code': case 'event_inj': m = ALL; break;
    case 'exit_info_1': m = exitInfo1Mask(code, sw); break;
    case 'exit_info_2': m = exitInfo2Mask(code); break;
    case 'exit_int_info': m = exitIntInfoMask(code, info); break;
    case 'exit_int_info_err': m = exitIntInfoMask(code, info) >> 32n; break;
    case 'next_rip':
      m = !sw.nrips || code === EXIT.INVALID || code === EXIT.SHUTDOWN || int3DeliveryFault(code, info) ? NONE : ALL;
      break;
    case 'vmcb_rip': m = code === EXIT.EXCP_DF || code === EXIT.SHUTDOWN || code === EXIT.INVALID ? NONE : ALL; break;
    case 'int_state':
      if (code === EXIT.SHUTDOWN) m = NONE;
      else m = info !== undefined && parseEventInfo(info).valid ? ~1n : ALL;
      break;
    case 'injected_return_rip': m = sw.nrips && !dfFrame ? ALL : NONE; break;
    case 'handler_vector': m = ALL; break;
    case 'handler_rip': m = dfFrame ? NONE : ALL; break;
    case 'ambiguous_return_rip': m = NONE; break;
    case 'idt_pf_error_code': m = ~4n; break;
  }
  return m & full;
}

type MaskField = Pick<RecordField, 'offset' | 'size'> & { role?: FieldRole | undefined; definedWhen?: DefinedWhen | undefined };

/**
 * The defined-bits mask of a whole record, as lower-case hex of the record's length (bit set =
 * defined); undefined when every bit of every field is defined (no mask needed). `record` is the
 * model's record (hex). Bytes beyond the declared fields are defined.
 */
export function recordMask(fields: readonly MaskField[], record: string, switches: MaskSwitches): string | undefined {
  const bytes = Uint8Array.from(Buffer.from(record, 'hex'));
  const roleField = (r: FieldRole): MaskField | undefined => fields.find((f) => f.role === r);
  const codeField = roleField('exit_code');
  const infoField = roleField('exit_int_info');
  const exitCode = codeField ? readField(bytes, codeField) : undefined;
  // a u32 exit_code field holds bits 31:0 only: all-ones there is VMEXIT_INVALID's low half
  const code = exitCode !== undefined && codeField!.size < 8 && exitCode === (1n << BigInt(8 * codeField!.size)) - 1n ? EXIT.INVALID : exitCode;
  const exitIntInfo = infoField ? readField(bytes, infoField) : undefined;
  const vecField = roleField('handler_vector');
  const handlerVector = vecField ? readField(bytes, vecField) : undefined;
  const out = new Uint8Array(bytes.length).fill(0xff);
  let any = false;
  for (const f of fields) {
    if (f.offset + f.size > bytes.length) continue;
    const m = fieldMask(f, { exitCode: code, exitIntInfo, switches, handlerVector });
    const full = (1n << BigInt(8 * f.size)) - 1n;
    if (m !== full) any = true;
    for (let i = 0; i < f.size; i++) out[f.offset + i] = Number((m >> BigInt(8 * i)) & 0xffn);
  }
  return any ? Buffer.from(out).toString('hex') : undefined;
}

/** The bits of `field` in a record mask (hex), or undefined when there is no mask / it is too short. */
export function fieldOfMask(mask: string | undefined, field: Pick<RecordField, 'offset' | 'size'>): bigint | undefined {
  if (mask === undefined || mask.length < 2 * (field.offset + field.size)) return undefined;
  return readField(Uint8Array.from(Buffer.from(mask, 'hex')), field);
}
