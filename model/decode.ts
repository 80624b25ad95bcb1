// Decode: iced-x86 (a fuzzed decoder, exact on prefixes and lengths) turned into plain objects.
//
// The wasm Instruction is read once, copied into an Insn and freed; Insns are cached by the
// caller per linear address and code size. next_rip, the pushed RIP of a trap and every
// "instruction length" in the SVM rules come from `length` here, prefixes included.

import { Code, Decoder, DecoderError, DecoderOptions, MemorySize, Mnemonic, OpKind, Register } from 'iced-x86';

export type RegKind = 'gpr' | 'seg' | 'cr' | 'dr';

export interface RegRef {
  kind: RegKind;
  index: number;
  /** Bytes: 1, 2, 4, 8 (segment registers: 2). */
  size: number;
  /** AH, CH, DH, BH: bits 15:8 of the register. */
  high8: boolean;
}

export type Operand =
  | { kind: 'reg'; reg: RegRef; size: number }
  | { kind: 'mem'; size: number; seg: number; base: number; index: number; scale: number; disp: bigint; addrSize: number }
  | { kind: 'imm'; size: number; value: bigint }
  | { kind: 'rel'; size: number; target: bigint }
  | { kind: 'far'; size: number; selector: number; offset: bigint }
  /** String-instruction memory operands: [seg:rSI] and [ES:rDI]. */
  | { kind: 'str'; size: number; seg: number; reg: number; addrSize: number };

/** base/index of a memory operand without that register (RIP-relative operands have no base:
 * iced gives their displacement as the absolute target). */
export const NO_REG = -1;

export interface Insn {
  ip: bigint;
  length: number;
  next: bigint;
  /** Mnemonic as iced names it ("Mov", "Int3", "Iretq" is Code, "Iret" is Mnemonic). */
  mnemonic: string;
  /** iced Code name: mnemonic plus operand forms and sizes ("Iretq", "Pushfq", "Stosb"). */
  code: string;
  ops: Operand[];
  rep: 'none' | 'rep' | 'repne';
  lock: boolean;
  /** Bytes of the instruction, for diagnostics and decode assists. */
  bytes: Uint8Array;
}

const SEG_OF_REGISTER: Record<number, number> = {
  [Register.ES]: 0, [Register.CS]: 1, [Register.SS]: 2, [Register.DS]: 3, [Register.FS]: 4, [Register.GS]: 5,
};

export function regRef(r: Register): RegRef {
  if (r >= Register.AL && r <= Register.BH) {
    const i = r - Register.AL;
    return i < 4 ? { kind: 'gpr', index: i, size: 1, high8: false } : { kind: 'gpr', index: i - 4, size: 1, high8: true };
  }
  if (r >= Register.SPL && r <= Register.R15L) return { kind: 'gpr', index: r - Register.SPL + 4, size: 1, high8: false };
  if (r >= Register.AX && r <= Register.R15W) return { kind: 'gpr', index: r - Register.AX, size: 2, high8: false };
  if (r >= Register.EAX && r <= Register.R15D) return { kind: 'gpr', index: r - Register.EAX, size: 4, high8: false };
  if (r >= Register.RAX && r <= Register.R15) return { kind: 'gpr', index: r - Register.RAX, size: 8, high8: false };
  if (r in SEG_OF_REGISTER) return { kind: 'seg', index: SEG_OF_REGISTER[r]!, size: 2, high8: false };
  if (r >= Register.CR0 && r <= Register.CR15) return { kind: 'cr', index: r - Register.CR0, size: 8, high8: false };
  if (r >= Register.DR0 && r <= Register.DR15) return { kind: 'dr', index: r - Register.DR0, size: 8, high8: false };
  throw new Error(`model: register ${Register[r]} is not modelled`);
}

function gprIndex(r: Register): number {
  if (r === Register.None) return NO_REG;
  return regRef(r).index;
}

function gprSize(r: Register): number {
  if (r >= Register.AX && r <= Register.R15W) return 2;
  if (r >= Register.EAX && r <= Register.R15D) return 4;
  if (r === Register.EIP) return 4;
  return 8;
}

/** Memory operand sizes in bytes, for the MemorySize values the modelled instructions use. */
const MEMORY_SIZE_BYTES: Record<number, number> = {
  [MemorySize.UInt8]: 1, [MemorySize.Int8]: 1,
  [MemorySize.UInt16]: 2, [MemorySize.Int16]: 2, [MemorySize.WordOffset]: 2,
  [MemorySize.UInt32]: 4, [MemorySize.Int32]: 4, [MemorySize.DwordOffset]: 4,
  [MemorySize.UInt64]: 8, [MemorySize.Int64]: 8, [MemorySize.QwordOffset]: 8,
  [MemorySize.SegPtr16]: 4, [MemorySize.SegPtr32]: 6, [MemorySize.SegPtr64]: 10,
  [MemorySize.Fword6]: 6, [MemorySize.Fword10]: 10,
  [MemorySize.Bound16_WordWord]: 4, [MemorySize.Bound32_DwordDword]: 8,
};

function memBytes(i: { memorySize: number }, fallback: number): number {
  return MEMORY_SIZE_BYTES[i.memorySize] ?? fallback;
}

/** Operand size in bytes of instructions whose size is only in the iced Code name. */
function sizeFromCode(code: string, bitness: number): number {
  if (/b$/.test(code) || /_r8|_rm8|_imm8$|_AL_/.test(code)) return 1;
  if (/q$|64/.test(code)) return 8;
  if (/d$|32/.test(code)) return 4;
  if (/w$|16/.test(code)) return 2;
  return bitness === 64 ? 8 : bitness / 8;
}

const CODE_NAMES: string[] = [];
for (const [k, v] of Object.entries(Code)) if (typeof v === 'number') CODE_NAMES[v] = k;
const MNEMONIC_NAMES: string[] = [];
for (const [k, v] of Object.entries(Mnemonic)) if (typeof v === 'number') MNEMONIC_NAMES[v] = k;

export class NeedMoreBytes extends Error {}

/**
 * Decoded instructions by (code size, address, the bytes given), shared by every CPU of the
 * process: a decode is a pure function of those three, and the wasm decoder costs tens of
 * microseconds while the same kernels boot again and again (each case, each run). Insns are
 * never changed once made, so sharing them is safe; the size is bounded by dropping everything.
 */
const decoded = new Map<string, Insn>();
const DECODED_MAX = 1 << 16;
const ipKey64 = new BigUint64Array(1);
const ipKey32 = new Uint32Array(ipKey64.buffer);

/**
 * Decode one instruction at `ip` from `bytes` (up to 15, fewer when the next page could not be
 * fetched). Throws NeedMoreBytes when the instruction runs past the bytes given.
 */
export function decodeOne(bytes: Uint8Array, ip: bigint, bitness: 16 | 32 | 64): Insn {
  // the key from numbers and char codes: a bigint's toString alone costs more than the lookup
  ipKey64[0] = ip;
  let key = `${bitness}:${ipKey32[0]}:${ipKey32[1]}:`;
  for (let n = 0; n < bytes.length; n++) key += String.fromCharCode(bytes[n]!);
  let insn = decoded.get(key);
  if (insn === undefined) {
    insn = decodeUncached(bytes, ip, bitness);
    if (decoded.size >= DECODED_MAX) decoded.clear();
    decoded.set(key, insn);
  }
  return insn;
}

function decodeUncached(bytes: Uint8Array, ip: bigint, bitness: 16 | 32 | 64): Insn {
  const decoder = new Decoder(bitness, bytes, DecoderOptions.AMD);
  decoder.ip = ip;
  const i = decoder.decode();
  try {
    const code = CODE_NAMES[i.code] ?? `Code${i.code}`;
    if (i.code === Code.INVALID) {
      // iced says invalid: either the bytes ran out (the next page could not be fetched), or #UD
      if (decoder.lastError === DecoderError.NoMoreBytes && bytes.length < 15) throw new NeedMoreBytes();
    }
    const ops: Operand[] = [];
    for (let n = 0; n < i.opCount; n++) {
      const kind = i.opKind(n);
      switch (kind) {
        case OpKind.Register: {
          const reg = regRef(i.opRegister(n));
          ops.push({ kind: 'reg', reg, size: reg.size });
          break;
        }
        case OpKind.Memory: {
          const base = i.memoryBase;
          const index = i.memoryIndex;
          const sizeReg = base !== Register.None ? base : index;
          const addrSize = sizeReg !== Register.None ? gprSize(sizeReg) : bitness === 64 ? 8 : bitness / 8;
          ops.push({
            kind: 'mem',
            size: memBytes(i, sizeFromCode(code, bitness)),
            seg: SEG_OF_REGISTER[i.memorySegment] ?? 3,
            base: base === Register.RIP || base === Register.EIP ? NO_REG : gprIndex(base),
            index: gprIndex(index),
            scale: i.memoryIndexScale,
            // for RIP-relative operands iced gives the absolute target here (base becomes NO_REG below)
            disp: i.memoryDisplacementU64,
            addrSize,
          });
          break;
        }
        case OpKind.Immediate8: ops.push({ kind: 'imm', size: 1, value: BigInt(i.immediate8) }); break;
        case OpKind.Immediate8_2nd: ops.push({ kind: 'imm', size: 1, value: BigInt(i.immediate8_2nd) }); break;
        case OpKind.Immediate16: ops.push({ kind: 'imm', size: 2, value: BigInt(i.immediate16) }); break;
        case OpKind.Immediate32: ops.push({ kind: 'imm', size: 4, value: BigInt(i.immediate32 >>> 0) }); break;
        case OpKind.Immediate64: ops.push({ kind: 'imm', size: 8, value: i.immediate64 }); break;
        case OpKind.Immediate8to16: ops.push({ kind: 'imm', size: 2, value: BigInt(i.immediate8to16 & 0xffff) }); break;
        case OpKind.Immediate8to32: ops.push({ kind: 'imm', size: 4, value: BigInt(i.immediate8to32 >>> 0) }); break;
        case OpKind.Immediate8to64: ops.push({ kind: 'imm', size: 8, value: BigInt.asUintN(64, i.immediate8to64) }); break;
        case OpKind.Immediate32to64: ops.push({ kind: 'imm', size: 8, value: BigInt.asUintN(64, i.immediate32to64) }); break;
        case OpKind.NearBranch16: ops.push({ kind: 'rel', size: 2, target: BigInt(i.nearBranch16) }); break;
        case OpKind.NearBranch32: ops.push({ kind: 'rel', size: 4, target: BigInt(i.nearBranch32 >>> 0) }); break;
        case OpKind.NearBranch64: ops.push({ kind: 'rel', size: 8, target: i.nearBranch64 }); break;
        case OpKind.FarBranch16: ops.push({ kind: 'far', size: 2, selector: i.farBranchSelector, offset: BigInt(i.farBranch16) }); break;
        case OpKind.FarBranch32: ops.push({ kind: 'far', size: 4, selector: i.farBranchSelector, offset: BigInt(i.farBranch32 >>> 0) }); break;
        case OpKind.MemorySegSI: case OpKind.MemorySegESI: case OpKind.MemorySegRSI:
          ops.push({ kind: 'str', size: memBytes(i, sizeFromCode(code, bitness)), seg: SEG_OF_REGISTER[i.memorySegment] ?? 3, reg: 6, addrSize: kind === OpKind.MemorySegSI ? 2 : kind === OpKind.MemorySegESI ? 4 : 8 });
          break;
        case OpKind.MemoryESDI: case OpKind.MemoryESEDI: case OpKind.MemoryESRDI: case OpKind.MemorySegDI: case OpKind.MemorySegEDI: case OpKind.MemorySegRDI:
          ops.push({ kind: 'str', size: memBytes(i, sizeFromCode(code, bitness)), seg: kind <= OpKind.MemorySegRDI ? (SEG_OF_REGISTER[i.memorySegment] ?? 3) : 0, reg: 7, addrSize: kind === OpKind.MemoryESDI || kind === OpKind.MemorySegDI ? 2 : kind === OpKind.MemoryESEDI || kind === OpKind.MemorySegEDI ? 4 : 8 });
          break;
        default:
          throw new Error(`model: operand kind ${OpKind[kind]} of ${code} is not modelled`);
      }
    }
    return {
      ip,
      length: i.length,
      next: BigInt.asUintN(64, ip + BigInt(i.length)),
      mnemonic: i.code === Code.INVALID ? 'INVALID' : (MNEMONIC_NAMES[i.mnemonic] ?? 'INVALID'),
      code,
      ops,
      rep: i.hasRepPrefix || i.hasRepePrefix ? 'rep' : i.hasRepnePrefix ? 'repne' : 'none',
      lock: i.hasLockPrefix,
      bytes: bytes.slice(0, i.length || 1),
    };
  } finally {
    i.free();
    decoder.free();
  }
}

