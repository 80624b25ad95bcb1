// The parts of an ELF32 multiboot kernel every loader needs (the model's Machine, the Bochs
// boot sector): the entry point and the PT_LOAD segments with their physical addresses.
// ELF32 header and program header offsets per the System V ABI (gABI "ELF Header", "Program Header").

const ELF_MAGIC = 0x7f454c46;
const ELFCLASS32 = 1;
const PT_LOAD = 1;

export interface Elf32Segment {
  /** File offset of the segment's bytes. */
  offset: number;
  /** Physical load address (p_paddr: multiboot loaders load there). */
  paddr: number;
  filesz: number;
  /** Bytes in memory; past filesz they are zero (.bss). */
  memsz: number;
}

/** Entry point and PT_LOAD segments, in program-header order; throws on anything else than ELF32. */
export function readElf32(elf: Uint8Array): { entry: number; segments: Elf32Segment[] } {
  const v = new DataView(elf.buffer, elf.byteOffset, elf.byteLength);
  if (elf.byteLength < 52 || v.getUint32(0, false) !== ELF_MAGIC || elf[4] !== ELFCLASS32) throw new Error('not an ELF32 image');
  const entry = v.getUint32(24, true);
  const phoff = v.getUint32(28, true);
  const phentsize = v.getUint16(42, true);
  const phnum = v.getUint16(44, true);
  const segments: Elf32Segment[] = [];
  for (let i = 0; i < phnum; i++) {
    const ph = phoff + i * phentsize;
    if (v.getUint32(ph, true) !== PT_LOAD) continue;
    segments.push({ offset: v.getUint32(ph + 4, true), paddr: v.getUint32(ph + 12, true), filesz: v.getUint32(ph + 16, true), memsz: v.getUint32(ph + 20, true) });
  }
  return { entry, segments };
}
