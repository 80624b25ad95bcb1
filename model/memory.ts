// Guest-physical memory: RAM from 0, little-endian, reads beyond RAM return all ones and writes
// there are dropped (an unclaimed bus, as on a PC). Pages holding decoded instructions are
// tracked so a write to them drops the decode cache of that page (self-modifying code, and data
// that shares a page with code).
//
// Guest RAM can be taken from a small per-process pool (PhysicalMemory.pooled) and given back
// (release) when the machine is done with it. A fresh 128 MiB Uint8Array per boot is counted by V8
// as external memory, and that count alone drove about a tenth of the model's time in the L1 suite
// into garbage collection. To hand back RAM that is indistinguishable from a fresh allocation, every
// write marks its 4 KiB page dirty and release re-zeroes exactly those pages.

export const PAGE_SHIFT = 12;

const scratch64 = new BigUint64Array(1);
const scratch32 = new Uint32Array(scratch64.buffer);
function low32(v: bigint): number {
  scratch64[0] = v;
  return scratch32[0]!;
}

/** RAM bytes with their page-dirty map; all zero while in the pool. */
interface Ram {
  bytes: Uint8Array;
  /** One byte per 4 KiB page: 1 once anything was written there since the RAM was zero. */
  dirty: Uint8Array;
}

/** Free RAM by size. A few are enough: one per boot running at the same time. */
const pool = new Map<number, Ram[]>();
const POOL_MAX_PER_SIZE = 8;

function newRam(size: number): Ram {
  return { bytes: new Uint8Array(size), dirty: new Uint8Array((size + (1 << PAGE_SHIFT) - 1) >>> PAGE_SHIFT) };
}

export class PhysicalMemory {
  readonly bytes: Uint8Array;
  private readonly view: DataView;
  private readonly dirty: Uint8Array;
  /** Physical page number → callback that drops the decoded instructions of that page. */
  private readonly codePages = new Map<number, () => void>();
  private released = false;

  /** Fresh RAM of `size` bytes, never returned to the pool. */
  constructor(readonly size: number, ram: Ram = newRam(size)) {
    this.bytes = ram.bytes;
    this.dirty = ram.dirty;
    this.view = new DataView(this.bytes.buffer);
  }

  /** Zeroed RAM of `size` bytes from the pool (or fresh); give it back with release(). */
  static pooled(size: number): PhysicalMemory {
    return new PhysicalMemory(size, pool.get(size)?.pop() ?? newRam(size));
  }

  /**
   * Zero the pages written since this RAM was zero and return it to the pool. This object must not
   * be used afterwards (the next pooled() owner shares the bytes).
   */
  release(): void {
    if (this.released) throw new Error('PhysicalMemory released twice');
    this.released = true;
    const { bytes, dirty } = this;
    for (let p = 0; p < dirty.length; p++) {
      if (dirty[p] === 0) continue;
      bytes.fill(0, p << PAGE_SHIFT, (p + 1) << PAGE_SHIFT);
      dirty[p] = 0;
    }
    const free = pool.get(this.size) ?? [];
    if (free.length < POOL_MAX_PER_SIZE) free.push({ bytes, dirty });
    pool.set(this.size, free);
  }

  private inRange(addr: number, len: number): boolean {
    return addr >= 0 && addr + len <= this.size;
  }

  watchCode(page: number, onWrite: () => void): void {
    this.codePages.set(page, onWrite);
  }

  private written(addr: number, len: number): void {
    const first = addr >>> PAGE_SHIFT;
    const last = (addr + len - 1) >>> PAGE_SHIFT;
    // two stores cover the 1–8 byte writes (at most two pages); load and fill span more
    this.dirty[first] = 1;
    this.dirty[last] = 1;
    if (last > first + 1) this.dirty.fill(1, first, last);
    if (this.codePages.size === 0) return;
    for (let p = first; p <= last; p++) {
      const drop = this.codePages.get(p);
      if (drop) {
        this.codePages.delete(p);
        drop();
      }
    }
  }

  read8(addr: number): number {
    return this.inRange(addr, 1) ? this.bytes[addr]! : 0xff;
  }
  read16(addr: number): number {
    return this.inRange(addr, 2) ? this.view.getUint16(addr, true) : 0xffff;
  }
  read32(addr: number): number {
    return this.inRange(addr, 4) ? this.view.getUint32(addr, true) : 0xffff_ffff;
  }
  read64(addr: number): bigint {
    return this.inRange(addr, 8) ? this.view.getBigUint64(addr, true) : 0xffff_ffff_ffff_ffffn;
  }
  /** Little-endian read of 1, 2, 4 or 8 bytes as a bigint. */
  read(addr: number, size: number): bigint {
    switch (size) {
      case 1: return BigInt(this.read8(addr));
      case 2: return BigInt(this.read16(addr));
      case 4: return BigInt(this.read32(addr));
      default: return this.read64(addr);
    }
  }

  write8(addr: number, v: number): void {
    if (!this.inRange(addr, 1)) return;
    this.bytes[addr] = v;
    this.written(addr, 1);
  }
  write16(addr: number, v: number): void {
    if (!this.inRange(addr, 2)) return;
    this.view.setUint16(addr, v, true);
    this.written(addr, 2);
  }
  write32(addr: number, v: number): void {
    if (!this.inRange(addr, 4)) return;
    this.view.setUint32(addr, v >>> 0, true);
    this.written(addr, 4);
  }
  write64(addr: number, v: bigint): void {
    if (!this.inRange(addr, 8)) return;
    this.view.setBigUint64(addr, BigInt.asUintN(64, v), true);
    this.written(addr, 8);
  }
  write(addr: number, size: number, v: bigint): void {
    switch (size) {
      // the low bits through a BigUint64Array (about a nanosecond; Number(v & mask) allocates)
      case 1: this.write8(addr, low32(v) & 0xff); break;
      case 2: this.write16(addr, low32(v) & 0xffff); break;
      case 4: this.write32(addr, low32(v)); break;
      default: this.write64(addr, v);
    }
  }

  load(addr: number, data: Uint8Array): void {
    if (!this.inRange(addr, data.length)) throw new Error(`image of ${data.length} bytes at 0x${addr.toString(16)} does not fit in ${this.size} bytes of RAM`);
    this.bytes.set(data, addr);
    this.written(addr, data.length);
  }

  fill(addr: number, len: number, value: number): void {
    if (!this.inRange(addr, len)) throw new Error(`fill beyond RAM at 0x${addr.toString(16)}`);
    this.bytes.fill(value, addr, addr + len);
    this.written(addr, len);
  }
}
