// Decoding of record fields and the architectural constants behind it.
// Expected strings are derived by hand from docs/svm-rules.md (SR) and the AMD64 APM vol. 2
// (pub. 24593): the comment on each case says which bits mean what.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FieldDecode, FieldType, RecordField } from '../core/types.ts';
import { asmConstants, asmConstantTable } from '../arch/asm.ts';
import { EVENT_TYPE, EXIT, exitCodeName, makeEventInj, parseEventInfo, VMCB, VMCB_SAVE } from '../arch/svm.ts';
import { pushesErrorCode, VEC } from '../arch/x86.ts';
import { asmLayout } from '../generator/layout.ts';
import {
  CRASH_LAYOUT, decodeCrash, decodeRecord, describeCrash, formatEventInfo, formatExitCode, formatOffset, formatRflags,
  formatSelector, formatValue, formatVector, parseHex, RecordFormatError,
} from '../report/decode.ts';
import { CRASH_RECORD_SIZE } from '../generator/layout.ts';

const SIZES: Record<FieldType, number> = { u8: 1, u16: 2, u32: 4, u64: 8 };

/** Pack a layout from declarations, like the generator does (fields are packed in order). */
function layout(spec: Array<[string, FieldType, FieldDecode]>): RecordField[] {
  let offset = 0;
  return spec.map(([name, type, decode]) => {
    const f: RecordField = { name, type, offset, size: SIZES[type], decode, doc: name };
    offset += f.size;
    return f;
  });
}

/** Little-endian hex of a value of `size` bytes, written independently of report/decode.ts. */
function le(value: bigint, size: number): string {
  let s = '';
  for (let i = 0; i < size; i++) s += ((value >> BigInt(8 * i)) & 0xffn).toString(16).padStart(2, '0');
  return s;
}

describe('arch constants', () => {
  it('vectors and error codes follow APM Table 8-1', () => {
    assert.equal(VEC.BP, 3);
    assert.equal(VEC.GP, 13);
    assert.equal(VEC.SX, 30);
    // Table 8-1: #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX push an error code; #BP, #UD, #DB do not.
    for (const v of [8, 10, 11, 12, 13, 14, 17, 21, 29, 30]) assert.equal(pushesErrorCode(v), true, `vector ${v}`);
    for (const v of [0, 1, 2, 3, 4, 5, 6, 7, 16, 18, 19, 20, 28]) assert.equal(pushesErrorCode(v), false, `vector ${v}`);
  });

  it('exit codes match SR "Exit codes" (0x40 + vector, …, INVALID = all ones)', () => {
    assert.equal(EXIT.EXCP_BP, 0x43n);
    assert.equal(EXIT.EXCP_PF, 0x4en);
    assert.equal(EXIT.SWINT, 0x75n);
    assert.equal(EXIT.VMMCALL, 0x81n);
    assert.equal(EXIT.ICEBP, 0x88n);
    assert.equal(EXIT.NPF, 0x400n);
    assert.equal(EXIT.INVALID, (1n << 64n) - 1n);
    assert.equal(exitCodeName(0x13n), 'VMEXIT_CR3_WRITE'); // CR writes 0x10–0x1F
    assert.equal(exitCodeName(0x27n), 'VMEXIT_DR7_READ'); // DR reads 0x20–0x2F
    assert.equal(exitCodeName(0x49n), 'VMEXIT_EXCP_9'); // vector 9 has no mnemonic
    assert.equal(exitCodeName(0x500n), undefined);
  });

  it('VMCB offsets match SR "VMCB offsets"', () => {
    assert.equal(VMCB.EXIT_CODE, 0x070);
    assert.equal(VMCB.EXIT_INT_INFO, 0x088);
    assert.equal(VMCB.EVENT_INJ, 0x0a8);
    assert.equal(VMCB.NEXT_RIP, 0x0c8);
    assert.equal(VMCB_SAVE.RIP, 0x578);
    assert.equal(VMCB_SAVE.CPL, 0x4cb);
  });

  it('EVENTINJ composes and splits (SR "EVENTINJ and EXITINTINFO layout": vector 7:0, type 10:8, EV 11, V 31, error code 63:32)', () => {
    // INT 0x20 injected: V (0x8000_0000) | type 4 << 8 (0x400) | 0x20.
    assert.equal(makeEventInj({ vector: 0x20, type: EVENT_TYPE.SOFT_INT }), 0x8000_0420n);
    // #GP with error code 0x1a: V | EV (0x800) | 3 << 8 | 13, code in the high dword.
    assert.equal(makeEventInj({ vector: 13, type: EVENT_TYPE.EXCEPTION, ev: true, errorCode: 0x1a }), 0x1a_8000_0b0dn);
    assert.deepEqual(parseEventInfo(0x1a_8000_0b0dn), { valid: true, vector: 13, type: 3, ev: true, reserved: 0, errorCode: 0x1a });
  });

  it('asmConstants renders the names the kernels use, with the TS values', () => {
    const text = asmConstants();
    for (const line of [
      '.set VMCB_EXIT_CODE, 0x70',
      '.set VMCB_EVENT_INJ, 0xa8',
      '.set VMCB_EXIT_INT_INFO, 0x88',
      '.set VMCB_NEXT_RIP, 0xc8',
      '.set VMCB_SAVE_RIP, 0x578',
      '.set INTERCEPT_VMMCALL, 0x1', // bit 1 of the word at 0x010
      '.set INTERCEPT_VMMCALL_WORD, 0x10',
      '.set INTERCEPT_VMRUN, 0x0',
      '.set INTERCEPT_INTN, 0x15', // bit 21 of the word at 0x00C
      '.set INTERCEPT_SHUTDOWN, 0x1f',
      '.set EXIT_VMMCALL, 0x81',
      '.set EXIT_EXCP_BP, 0x43',
      '.set EXIT_INVALID, 0xffffffffffffffff',
      '.set EVENT_TYPE_SOFT_INT, 0x4',
      '.set EVENTINJ_TYPE_SOFT_INT, 0x400',
      '.set EVENTINJ_V, 0x80000000',
      '.set EVENTINJ_EV, 0x800',
      '.set MSR_EFER, 0xc0000080',
      '.set MSR_VM_HSAVE_PA, 0xc0010117',
      '.set EFER_SVME, 0x1000',
      '.set EFER_SVME_BIT, 0xc',
      '.set CPUID_SVM_EDX_NRIPS_BIT, 0x3',
      '.set VEC_BP, 0x3',
      '.set RFLAGS_IF, 0x200',
    ]) {
      assert.ok(text.split('\n').includes(line), `missing: ${line}`);
    }
  });

  it('asm constant names are unique and do not clash with generator/layout.ts', () => {
    const names = asmConstantTable().map(([n]) => n);
    assert.equal(new Set(names).size, names.length);
    const layoutNames = asmLayout().split('\n').map((l) => /^\.set (\w+),/.exec(l)?.[1]).filter(Boolean);
    assert.ok(layoutNames.length > 0);
    for (const n of layoutNames) assert.ok(!names.includes(n as string), `${n} defined twice`);
  });

  it('GNU as accepts the constants and gives them the TS values', function () {
    if (spawnSync('as', ['--version']).status !== 0) this.skip();
    const dir = mkdtempSync(join(tmpdir(), 'svmconf-asm-'));
    try {
      const probe = ['EXIT_INVALID', 'VMCB_EVENT_INJ', 'EVENTINJ_V', 'NPF_INFO_WALK', 'MSR_EFER'];
      const src = `${asmLayout()}${asmConstants()}\t.data\n${probe.map((n) => `\t.quad ${n}\n`).join('')}`;
      writeFileSync(join(dir, 'c.s'), src);
      const as = spawnSync('as', ['--64', '-o', join(dir, 'c.o'), join(dir, 'c.s')], { encoding: 'utf8' });
      assert.equal(as.status, 0, as.stderr);
      const oc = spawnSync('objcopy', ['-O', 'binary', '-j', '.data', join(dir, 'c.o'), join(dir, 'c.bin')], { encoding: 'utf8' });
      assert.equal(oc.status, 0, oc.stderr);
      const bin = readFileSync(join(dir, 'c.bin'));
      const got = probe.map((_, i) => bin.readBigUInt64LE(8 * i));
      assert.deepEqual(got, [0xffff_ffff_ffff_ffffn, 0xa8n, 0x8000_0000n, 1n << 33n, 0xc000_0080n]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('decode: exit codes', () => {
  it('names exception intercepts 0x40 + vector (SR "Exit codes")', () => {
    assert.equal(formatExitCode(0x43n), 'VMEXIT_EXCP_BP (0x43)');
    assert.equal(formatExitCode(0x4dn), 'VMEXIT_EXCP_GP (0x4d)');
    assert.equal(formatExitCode(0x4en), 'VMEXIT_EXCP_PF (0x4e)');
  });
  it('names instruction intercepts and #NPF', () => {
    assert.equal(formatExitCode(0x75n), 'VMEXIT_SWINT (0x75)');
    assert.equal(formatExitCode(0x81n), 'VMEXIT_VMMCALL (0x81)');
    assert.equal(formatExitCode(0x400n), 'VMEXIT_NPF (0x400)');
  });
  it('shows VMEXIT_INVALID for all ones, also in a narrower field', () => {
    assert.equal(formatExitCode(0xffff_ffff_ffff_ffffn), 'VMEXIT_INVALID');
    assert.equal(formatExitCode(0xffff_ffffn, 4), 'VMEXIT_INVALID');
    // QEMU keeps exit codes in a uint32_t and writes 0x0000_0000_ffff_ffff for VMEXIT_INVALID: say so.
    assert.equal(formatExitCode(0xffff_ffffn, 8), '0xffffffff (not VMEXIT_INVALID: only the low 32 bits set)');
    assert.equal(formatExitCode(0x500n), '0x500 (unknown exit code)');
  });
});

describe('decode: event info (EVENTINJ / EXITINTINFO)', () => {
  it('INT3 delivery interrupted: TYPE 3 (SR "EXITINTINFO types of the interrupt instructions": INT3 is an exception)', () => {
    // V bit 31 | type 3 << 8 | vector 3 = 0x8000_0303
    assert.equal(formatEventInfo(0x8000_0303n), 'V=1 TYPE=EXCEPTION VEC=#BP(3)');
  });
  it('INT n: TYPE 4, non-exception vector in hex', () => {
    assert.equal(formatEventInfo(0x8000_0420n), 'V=1 TYPE=SOFT_INT VEC=0x20');
    // `int $3` is TYPE 4 (SR): the vector is not decoded as an exception
    assert.equal(formatEventInfo(0x8000_0403n), 'V=1 TYPE=SOFT_INT VEC=0x3');
  });
  it('EV=1 shows the error code of bits 63:32 in a 64-bit field', () => {
    assert.equal(formatEventInfo(0x8000_0b03n), 'V=1 TYPE=EXCEPTION VEC=#BP(3) EV=1 ERR=0x0');
    assert.equal(formatEventInfo(0x1a_8000_0b0dn), 'V=1 TYPE=EXCEPTION VEC=#GP(13) EV=1 ERR=0x1a');
  });
  it('a 32-bit field has no error code half', () => {
    assert.equal(formatEventInfo(0x8000_0b0en, 4), 'V=1 TYPE=EXCEPTION VEC=#PF(14) EV=1');
  });
  it('V=0, with raw bits when the unspecified rest is non-zero', () => {
    assert.equal(formatEventInfo(0n), 'V=0');
    assert.equal(formatEventInfo(0x303n), 'V=0 (raw 0x303)');
  });
  it('NMI, reserved types and reserved bits', () => {
    assert.equal(formatEventInfo(0x8000_0202n), 'V=1 TYPE=NMI VEC=0x2');
    assert.equal(formatEventInfo(0x8000_0503n), 'V=1 TYPE=RSVD(5) VEC=0x3');
    assert.equal(formatEventInfo(0x8000_1303n), 'V=1 TYPE=EXCEPTION VEC=#BP(3) RSVD=0x1000'); // bit 12
    assert.equal(formatEventInfo(0x5_8000_0303n), 'V=1 TYPE=EXCEPTION VEC=#BP(3) EV=0 ERR=0x5');
  });
});

describe('decode: vectors, rflags, offsets, selectors', () => {
  it('vectors: mnemonic with number, hex beyond the exceptions', () => {
    assert.equal(formatVector(3n), '#BP (3)');
    assert.equal(formatVector(2n), 'NMI (2)');
    assert.equal(formatVector(14n), '#PF (14)');
    assert.equal(formatVector(0x20n), '0x20');
    assert.equal(formatVector(9n), '0x9');
  });
  it('rflags: set flags from the highest bit down (APM §3.1.6)', () => {
    // 0x246 = bit 9 IF | bit 6 ZF | bit 2 PF | bit 1 (reserved, always 1)
    assert.equal(formatRflags(0x246n), '0x246 [IF ZF PF]');
    // 0x3202 = IOPL 3 (bits 13:12) | IF
    assert.equal(formatRflags(0x3202n), '0x3202 [IOPL=3 IF]');
    // 0x10146 = RF (16) | TF (8) | ZF | PF
    assert.equal(formatRflags(0x10146n), '0x10146 [RF TF ZF PF]');
    assert.equal(formatRflags(0x2n), '0x2 []');
  });
  it('offsets are signed in the width of the field', () => {
    assert.equal(formatOffset(5n), '+0x5');
    assert.equal(formatOffset(0n), '+0x0');
    assert.equal(formatOffset(0xffff_ffff_ffff_fffdn), '-0x3');
    assert.equal(formatOffset(0xffff_fffdn, 4), '-0x3');
    assert.equal(formatOffset(0xffff_fffdn, 8), '+0xfffffffd');
    assert.equal(formatOffset(0x80n, 1), '-0x80');
  });
  it('selectors: table, index, RPL', () => {
    // 0x33 = index 6, TI 0 (GDT), RPL 3
    assert.equal(formatSelector(0x33n), '0x33 (GDT[6] RPL=3)');
    assert.equal(formatSelector(0x0fn), '0xf (LDT[1] RPL=3)');
    assert.equal(formatSelector(0n), '0x0 (null)');
  });
  it('hex, count and bool', () => {
    assert.equal(formatValue(255n, { decode: 'hex', size: 8 }), '0xff');
    assert.equal(formatValue(12n, { decode: 'count', size: 4 }), '12');
    assert.equal(formatValue(1n, { decode: 'bool', size: 1 }), '1');
    assert.equal(formatValue(2n, { decode: 'bool', size: 1 }), '0x2 (not 0/1)');
  });
});

describe('decode: records', () => {
  const L = layout([
    ['exit_code', 'u64', 'exitcode'],
    ['exit_int_info', 'u32', 'eventinfo'],
    ['exit_int_info_err', 'u32', 'hex'],
    ['next_rip', 'u64', 'offset'],
    ['vector', 'u8', 'vector'],
    ['db_hits', 'u16', 'count'],
  ]);
  const hexRecord = le(0x4en, 8) + le(0x8000_0b03n, 4) + le(0n, 4) + le(2n, 8) + le(3n, 1) + le(0x102n, 2);

  it('reads little-endian fields at their offsets', () => {
    const d = decodeRecord(hexRecord, L);
    assert.deepEqual(d.problems, []);
    assert.deepEqual(d.fields.map((f) => f.value), [0x4en, 0x8000_0b03n, 0n, 2n, 3n, 0x102n]);
    assert.deepEqual(d.fields.map((f) => f.text), [
      'VMEXIT_EXCP_PF (0x4e)', 'V=1 TYPE=EXCEPTION VEC=#BP(3) EV=1', '0x0', '+0x2', '#BP (3)', '258',
    ]);
  });
  it('flags a short record and leaves its missing fields undefined', () => {
    const d = decodeRecord(hexRecord.slice(0, 2 * 20), L);
    assert.equal(d.problems.length, 1);
    assert.match(d.problems[0] ?? '', /20 bytes, the layout declares 27/);
    assert.equal(d.fields[2]?.value, 0n); // bytes 12–15 are there
    assert.equal(d.fields[3]?.value, undefined); // next_rip needs bytes 16–23
    assert.equal(d.fields[3]?.text, '(missing)');
  });
  it('rejects text that is not hex', () => {
    assert.throws(() => parseHex('abc'), RecordFormatError);
    assert.throws(() => decodeRecord('zz', L), RecordFormatError);
    assert.deepEqual([...parseHex('00ff7A')], [0, 255, 0x7a]);
  });
});

describe('decode: crash record (docs/protocol.md, 48 bytes)', () => {
  it('has the protocol layout', () => {
    assert.deepEqual(CRASH_LAYOUT.map((f) => [f.name, f.offset, f.size]), [
      ['vector', 0, 8], ['error_code', 8, 8], ['rip', 16, 8], ['cs', 24, 8], ['rflags', 32, 8], ['cr2', 40, 8],
    ]);
  });
  it('is as long as the record the kernels write (generator/layout.ts CRASH_RECORD_SIZE)', () => {
    const last = CRASH_LAYOUT[CRASH_LAYOUT.length - 1]!;
    assert.equal(last.offset + last.size, CRASH_RECORD_SIZE);
  });
  it('decodes a #PF crash 3 bytes before the entry point', () => {
    const rec = le(14n, 8) + le(0x2n, 8) + le(-3n & ((1n << 64n) - 1n), 8) + le(0x8n, 8) + le(0x10046n, 8) + le(0xdead000n, 8);
    const c = decodeCrash(rec);
    assert.equal(c.vector, 14n);
    assert.equal(c.errorCode, 2n);
    assert.equal(c.rip, -3n);
    assert.equal(c.cr2, 0xdead000n);
    assert.equal(c.text, '#PF (14) err=0x2 rip=-0x3 cs=0x8 (GDT[1] RPL=0) rflags=0x10046 [RF ZF PF] cr2=0xdead000');
  });
  it('refuses a crash record of the wrong size, and describeCrash says so', () => {
    assert.throws(() => decodeCrash('00'.repeat(40)), /40 bytes, the layout declares 48/);
    assert.match(describeCrash('00'.repeat(40)), /^undecodable crash record/);
    assert.equal(describeCrash(undefined), 'no crash record');
  });
});
