// Pooled guest RAM (model/memory.ts): RAM given back with release() and taken again with pooled()
// must read exactly as a fresh allocation, whichever write path touched it.

import assert from 'node:assert/strict';
import { PhysicalMemory } from '../model/memory.ts';

// a size no other spec uses, so the pool holds only what these tests give back
const SIZE = (3 << 20) + (5 << 12);

function allZero(m: PhysicalMemory): boolean {
  return m.bytes.every((b) => b === 0);
}

describe('model memory pool', () => {
  it('hands back reused RAM zeroed after every kind of write, including page-crossing ones', () => {
    const a = PhysicalMemory.pooled(SIZE);
    assert.ok(allZero(a));
    a.write8(0, 0x11);
    a.write16(0x1fff, 0xbeef); // crosses into page 2
    a.write32(0x2ffe, 0xdeadbeef); // crosses into page 3
    a.write64(0x4ffc, 0x0123456789abcdefn); // crosses into page 5
    a.write(0x7000 - 1, 8, 0xffff_ffff_ffff_ffffn); // crosses into page 7
    a.load(0x10_0ffe, new Uint8Array(3 * 4096).fill(0x5a)); // four pages
    a.fill(0x20_0001, 5 * 4096, 0xa5); // six pages
    a.write32(SIZE - 4, 0xffffffff); // the last page
    a.write32(SIZE - 2, 0x12345678); // beyond RAM: dropped, marks nothing
    const bytes = a.bytes;
    a.release();
    const b = PhysicalMemory.pooled(SIZE);
    assert.equal(b.bytes, bytes, 'the released RAM is reused');
    assert.ok(allZero(b));
    b.release();
  });

  it('refuses a second release, and gives fresh RAM when the pool is empty', () => {
    const a = PhysicalMemory.pooled(SIZE);
    const b = PhysicalMemory.pooled(SIZE);
    assert.notEqual(a.bytes, b.bytes);
    assert.ok(allZero(b));
    a.release();
    b.release();
    assert.throws(() => a.release(), /released twice/);
  });
});
