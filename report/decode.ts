// Decoding of outcome records: hex → fields (bigint values) by a template's layout, and each
// value → text for humans by the field's decode hint. Purely presentational: comparison works on
// bytes (report/compare.ts), never on these strings.

import type { FieldDecode, FieldType, RecordField } from '../core/types.ts';
import { RFLAGS, RFLAGS_FLAG_NAMES, vectorMnemonic, FIRST_USER_VECTOR } from '../arch/x86.ts';
import { EVENT_TYPE, eventTypeName, exitCodeName, parseEventInfo } from '../arch/svm.ts';

export const FIELD_SIZES: Readonly<Record<FieldType, number>> = { u8: 1, u16: 2, u32: 4, u64: 8 };

export class RecordFormatError extends Error {
  override name = 'RecordFormatError';
}

/** Lower- or upper-case hex, two digits a byte, → bytes. Throws RecordFormatError on anything else. */
export function parseHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0) throw new RecordFormatError(`record hex has an odd number of digits (${hex.length})`);
  if (!/^[0-9a-fA-F]*$/.test(hex)) throw new RecordFormatError(`record is not hex: ${JSON.stringify(hex.slice(0, 40))}`);
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** Little-endian unsigned read of `size` bytes at `offset`; undefined when the bytes are not all there. */
export function readLE(bytes: Uint8Array, offset: number, size: number): bigint | undefined {
  if (offset < 0 || offset + size > bytes.length) return undefined;
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[offset + i] ?? 0);
  return v;
}

/** Size in bytes a layout declares (end of its last field). */
export function layoutSize(layout: readonly RecordField[]): number {
  return layout.reduce((end, f) => Math.max(end, f.offset + f.size), 0);
}

export interface DecodedField {
  field: RecordField;
  /** Undefined when the record is too short to hold the field. */
  value: bigint | undefined;
  text: string;
}

export interface DecodedRecord {
  bytes: Uint8Array;
  fields: DecodedField[];
  /** Size the layout declares. */
  expectedSize: number;
  /** Human-readable problems: record shorter or longer than the layout. Empty when it fits. */
  problems: string[];
}

/** Decode a record by its layout. Throws RecordFormatError only when `hex` is not hex. */
export function decodeRecord(hex: string, layout: readonly RecordField[]): DecodedRecord {
  const bytes = parseHex(hex);
  const expectedSize = layoutSize(layout);
  const problems: string[] = [];
  if (bytes.length < expectedSize) problems.push(`record is ${bytes.length} bytes, the layout declares ${expectedSize}`);
  if (bytes.length > expectedSize) problems.push(`record is ${bytes.length} bytes, the layout declares ${expectedSize} (${bytes.length - expectedSize} trailing)`);
  const fields = layout.map((field) => {
    const value = readLE(bytes, field.offset, field.size);
    return { field, value, text: value === undefined ? '(missing)' : formatValue(value, field) };
  });
  return { bytes, fields, expectedSize, problems };
}

// ---------------------------------------------------------------------------------------------
// Value formatting by decode hint

export const hex = (v: bigint | number): string => `0x${v.toString(16)}`;

const allOnes = (size: number): bigint => (1n << BigInt(8 * size)) - 1n;

/** `VMEXIT_EXCP_BP (0x43)`; `VMEXIT_INVALID` (also for an all-ones value of a narrower field). */
export function formatExitCode(value: bigint, size = 8): string {
  if (value === allOnes(size)) return 'VMEXIT_INVALID';
  const name = exitCodeName(value);
  if (name) return `${name} (${hex(value)})`;
  // VMEXIT_INVALID is all 64 bits set (SF "Exit codes"); an emulator that keeps exit codes in 32 bits
  // writes only the low half. Say so instead of a bare "unknown".
  if (size > 4 && value === 0xffff_ffffn) return '0xffffffff (not VMEXIT_INVALID: only the low 32 bits set)';
  return `${hex(value)} (unknown exit code)`;
}

/** `#BP (3)`, `NMI (2)`; vectors without a mnemonic as hex: `0x20`, `0x9`. */
export function formatVector(value: bigint): string {
  const mn = value < BigInt(FIRST_USER_VECTOR) ? vectorMnemonic(Number(value)) : undefined;
  return mn ? `${mn} (${value})` : hex(value);
}

/** The compact vector form used inside event info: `#BP(3)` for exceptions, else hex. */
function eventVector(vector: number, type: number): string {
  const mn = type === EVENT_TYPE.EXCEPTION && vector < FIRST_USER_VECTOR ? vectorMnemonic(vector) : undefined;
  return mn ? `${mn}(${vector})` : hex(vector);
}

/**
 * An EVENTINJ / EXITINTINFO value (docs/svm-rules.md "EVENTINJ and EXITINTINFO layout"; APM 15.20):
 *   `V=1 TYPE=SOFT_INT VEC=0x20`, `V=1 TYPE=EXCEPTION VEC=#BP(3) EV=1 ERR=0x0`, `V=0`.
 * ERR (bits 63:32) only exists in a 64-bit field; it is shown when EV=1, or when it is non-zero
 * although EV=0 (undefined bits that may explain a byte difference). Bits a valid event should not
 * have are shown too: RSVD (30:12), TYPE=RSVD(n). With V=0 the other bits are unspecified: shown raw
 * when non-zero.
 */
export function formatEventInfo(value: bigint, size = 8): string {
  const e = parseEventInfo(value);
  if (!e.valid) return value === 0n ? 'V=0' : `V=0 (raw ${hex(value)})`;
  const typeName = eventTypeName(e.type);
  const parts = ['V=1', `TYPE=${typeName ?? `RSVD(${e.type})`}`, `VEC=${eventVector(e.vector, e.type)}`];
  const hasErr = size >= 8;
  if (e.ev) parts.push('EV=1');
  if (hasErr && (e.ev || e.errorCode !== 0)) {
    if (!e.ev) parts.push('EV=0');
    parts.push(`ERR=${hex(e.errorCode)}`);
  }
  if (e.reserved !== 0) parts.push(`RSVD=${hex(BigInt(e.reserved) << 12n)}`);
  return parts.join(' ');
}

/** `0x246 [IF ZF PF]` (APM vol. 2 §3.1.6); IOPL shown when non-zero (`IOPL=3`); bit 1 omitted. */
export function formatRflags(value: bigint): string {
  const names: string[] = [];
  for (const name of RFLAGS_FLAG_NAMES) {
    if (name === 'OF') {
      const iopl = (value & RFLAGS.IOPL_MASK) >> RFLAGS.IOPL_SHIFT;
      if (iopl !== 0n) names.push(`IOPL=${iopl}`);
    }
    if ((value & RFLAGS[name]) !== 0n) names.push(name);
  }
  return `${hex(value)} [${names.join(' ')}]`;
}

/** Interpret `value` as a two's-complement number of `size` bytes. */
export function toSigned(value: bigint, size: number): bigint {
  return BigInt.asIntN(8 * size, value);
}

/** A signed distance: `+0x5`, `-0x3`, `+0x0`. */
export function formatOffset(value: bigint, size = 8): string {
  const s = toSigned(value, size);
  return s < 0n ? `-${hex(-s)}` : `+${hex(s)}`;
}

/** `0x33 (GDT[6] RPL=3)`, `0x0 (null)`. */
export function formatSelector(value: bigint): string {
  if (value === 0n) return '0x0 (null)';
  if (value > 0xffffn) return `${hex(value)} (not a selector)`;
  const table = (value & 4n) !== 0n ? 'LDT' : 'GDT';
  return `${hex(value)} (${table}[${value >> 3n}] RPL=${value & 3n})`;
}

/** Format one field value by its decode hint and size. */
export function formatValue(value: bigint, field: Pick<RecordField, 'decode' | 'size'>): string {
  const decode: FieldDecode = field.decode;
  switch (decode) {
    case 'exitcode': return formatExitCode(value, field.size);
    case 'eventinfo': return formatEventInfo(value, field.size);
    case 'vector': return formatVector(value);
    case 'rflags': return formatRflags(value);
    case 'offset': return formatOffset(value, field.size);
    case 'selector': return formatSelector(value);
    case 'count': return value.toString(10);
    case 'bool': return value === 0n || value === 1n ? value.toString() : `${hex(value)} (not 0/1)`;
    case 'hex': return hex(value);
    default: {
      const never: never = decode;
      return `${hex(value)} (decode ${String(never)}?)`;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The crash record (docs/protocol.md "The crash record (48 bytes)")

function packed(fields: Array<[name: string, type: FieldType, decode: FieldDecode, doc: string]>): RecordField[] {
  let offset = 0;
  return fields.map(([name, type, decode, doc]) => {
    const size = FIELD_SIZES[type];
    const f: RecordField = { name, type, offset, size, decode, doc };
    offset += size;
    return f;
  });
}

export const CRASH_LAYOUT: readonly RecordField[] = packed([
  ['vector', 'u64', 'vector', 'the vector that reached the catch-all IDT'],
  ['error_code', 'u64', 'hex', 'the error code the CPU pushed, 0 for vectors without one'],
  ['rip', 'u64', 'offset', "the interrupted RIP minus the case's entry point (signed)"],
  ['cs', 'u64', 'selector', 'the interrupted CS'],
  ['rflags', 'u64', 'rflags', 'the interrupted RFLAGS'],
  ['cr2', 'u64', 'hex', 'CR2 at the time of the crash'],
]);

export interface CrashInfo {
  vector: bigint;
  errorCode: bigint;
  /** Signed, relative to the case's entry point. */
  rip: bigint;
  cs: bigint;
  rflags: bigint;
  cr2: bigint;
  /** `#GP (13) err=0x10 rip=+0x1c cs=0x8 (GDT[1] RPL=0) rflags=0x10046 [RF ZF PF] cr2=0x0` */
  text: string;
}

/** Decode a CRASH record; throws RecordFormatError when it is not hex or not 48 bytes. */
export function decodeCrash(hexRecord: string): CrashInfo {
  const d = decodeRecord(hexRecord, CRASH_LAYOUT);
  if (d.bytes.length !== d.expectedSize) throw new RecordFormatError(`crash record: ${d.problems.join('; ')}`);
  const v = (i: number): bigint => d.fields[i]?.value ?? 0n;
  const t = (i: number): string => d.fields[i]?.text ?? '';
  return {
    vector: v(0),
    errorCode: v(1),
    rip: toSigned(v(2), 8),
    cs: v(3),
    rflags: v(4),
    cr2: v(5),
    text: `${t(0)} err=${t(1)} rip=${t(2)} cs=${t(3)} rflags=${t(4)} cr2=${t(5)}`,
  };
}

/** One-line description of a crash record, or a note when it cannot be decoded. */
export function describeCrash(hexRecord: string | undefined): string {
  if (hexRecord === undefined || hexRecord === '' || hexRecord === '-') return 'no crash record';
  try {
    return decodeCrash(hexRecord).text;
  } catch (e) {
    return `undecodable crash record (${(e as Error).message})`;
  }
}
