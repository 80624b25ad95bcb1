// RFLAGS status flags of arithmetic and logic results (APM vol. 1 3.1.4; vol. 3 per instruction).
//
// Flags the manual leaves undefined are made deterministic, and the rule is written here:
//   - logical instructions (AND, OR, XOR, TEST): AF = 0
//   - shifts and rotates by more than one: OF as for a shift by one of the last step (see isa/logic.ts)
//   - MUL/IMUL: SF, ZF, AF, PF from the low half of the result
//   - DIV/IDIV: all six status flags unchanged
//   - MUL/IMUL: AF = 0
//   - shifts (SHL/SAL, SHR, SAR) by a count that is not 0: AF = 0; a count beyond the operand
//     width (8/16-bit operands allow counts up to 31) shifts one bit at a time all the same, so CF
//     is the bit last shifted out (0 once the operand's own bits are gone; the sign for SAR)
//   - rotates: OF for any count other than 1 by the 1-bit formula applied to the result
//     (ROL, RCL: MSB xor CF; ROR, RCR: MSB xor the bit below it)
//   - BT, BTS, BTR, BTC: OF, SF, AF, PF unchanged
// A backend that differs only there differs in undefined bits: the report masks them.

export const F = {
  CF: 1 << 0,
  FIXED1: 1 << 1,
  PF: 1 << 2,
  AF: 1 << 4,
  ZF: 1 << 6,
  SF: 1 << 7,
  TF: 1 << 8,
  IF: 1 << 9,
  DF: 1 << 10,
  OF: 1 << 11,
  IOPL: 3 << 12,
  NT: 1 << 14,
  RF: 1 << 16,
  VM: 1 << 17,
  AC: 1 << 18,
  VIF: 1 << 19,
  VIP: 1 << 20,
  ID: 1 << 21,
} as const;

export const STATUS = F.CF | F.PF | F.AF | F.ZF | F.SF | F.OF;

const PARITY = new Uint8Array(256);
for (let i = 0; i < 256; i++) {
  let bits = 0;
  for (let b = i; b; b >>= 1) bits += b & 1;
  PARITY[i] = bits % 2 === 0 ? F.PF : 0;
}

const SIGN: Record<number, bigint> = { 1: 0x80n, 2: 0x8000n, 4: 0x8000_0000n, 8: 0x8000_0000_0000_0000n };
const MASK: Record<number, bigint> = { 1: 0xffn, 2: 0xffffn, 4: 0xffff_ffffn, 8: 0xffff_ffff_ffff_ffffn };

/** ZF, SF, PF of a result already masked to `size` bytes. */
export function szp(r: bigint, size: number): number {
  return (r === 0n ? F.ZF : 0) | ((r & SIGN[size]!) !== 0n ? F.SF : 0) | PARITY[Number(r & 0xffn)]!;
}

/** Flags of a + b + carry = r (all masked to size). */
export function addFlags(a: bigint, b: bigint, carry: bigint, r: bigint, size: number): number {
  const sign = SIGN[size]!;
  let f = szp(r, size);
  if (a + b + carry > MASK[size]!) f |= F.CF;
  if (((a ^ b ^ r) & 0x10n) !== 0n) f |= F.AF;
  if (((~(a ^ b) & (a ^ r)) & sign) !== 0n) f |= F.OF;
  return f;
}

/** Flags of a - b - borrow = r (all masked to size). */
export function subFlags(a: bigint, b: bigint, borrow: bigint, r: bigint, size: number): number {
  const sign = SIGN[size]!;
  let f = szp(r, size);
  if (a < b + borrow) f |= F.CF;
  if (((a ^ b ^ r) & 0x10n) !== 0n) f |= F.AF;
  if ((((a ^ b) & (a ^ r)) & sign) !== 0n) f |= F.OF;
  return f;
}

/** Flags of a logical result: CF = OF = 0, AF = 0 (undefined in the manual; see above). */
export function logicFlags(r: bigint, size: number): number {
  return szp(r, size);
}

export function maskFor(size: number): bigint {
  return MASK[size]!;
}

export function signBit(size: number): bigint {
  return SIGN[size]!;
}

/** Replace the status flags of rflags with `status` (other flags kept). */
export function withStatus(rflags: number, status: number, which = STATUS): number {
  return (rflags & ~which) | (status & which);
}
