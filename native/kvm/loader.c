/*
 * Multiboot v1 loader for the svmconf batch kernels: ELF32 (x86-64 code wrapped by
 * `objcopy -O elf32-i386`, DESIGN "Kernels"), PT_LOAD segments copied to their physical addresses,
 * the rest of each segment zeroed, then the information block (Multiboot Specification 0.6.96,
 * 3.3) with the memory fields and the command line, and a flat GDT for GDTR to point at.
 * Pure: works on a buffer, so --check and --selftest run it without /dev/kvm.
 */
#include <stdio.h>
#include <string.h>

#include "vmm.h"

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }
static void wr32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}
static void wr64(uint8_t *p, uint64_t v) {
  wr32(p, (uint32_t)v);
  wr32(p + 4, (uint32_t)(v >> 32));
}

/* ELF32 (System V ABI, i386 supplement) offsets used here */
#define EI_CLASS 4
#define EI_DATA 5
#define ELFCLASS32 1
#define ELFDATA2LSB 1
#define ET_EXEC 2
#define EM_386 3
#define PT_LOAD 1
#define EHDR32_SIZE 52
#define PHDR32_SIZE 32

/* Flat 4 GiB descriptors (APM vol. 2 4.7, 4.8): G=1, D/B=1, P=1, DPL 0, code execute/read
 * accessed (type 0xB), data read/write accessed (type 0x3). */
#define DESC_CODE32 0x00cf9b000000ffffull
#define DESC_DATA32 0x00cf93000000ffffull

int load_multiboot(const uint8_t *elf, size_t size, uint8_t *ram, size_t ram_size, const char *cmdline,
                   struct load_info *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (size < EHDR32_SIZE || memcmp(elf, "\x7f" "ELF", 4) != 0) return ERRF(err, errlen, "not an ELF file");
  if (elf[EI_CLASS] != ELFCLASS32)
    return ERRF(err, errlen, "not an ELF32 image (class %u): multiboot v1 kernels are wrapped with objcopy -O elf32-i386", elf[EI_CLASS]);
  if (elf[EI_DATA] != ELFDATA2LSB) return ERRF(err, errlen, "not a little-endian ELF");
  if (rd16(elf + 16) != ET_EXEC) return ERRF(err, errlen, "not an executable ELF (type %u)", rd16(elf + 16));
  if (rd16(elf + 18) != EM_386) return ERRF(err, errlen, "ELF machine %u, expected EM_386 (3)", rd16(elf + 18));

  /* the multiboot header (3.1.1): magic, flags, checksum summing to 0, 4-aligned, first 8 KiB */
  bool found = false;
  for (size_t off = 0; off + 12 <= size && off < MB_HEADER_SEARCH; off += 4) {
    uint32_t magic = rd32(elf + off), flags = rd32(elf + off + 4), sum = rd32(elf + off + 8);
    if (magic == MB_HEADER_MAGIC && (uint32_t)(magic + flags + sum) == 0) {
      /* bits 0-15 are requirements the loader must meet or refuse (3.1.2): we give memory info
       * (bit 1); page alignment (bit 0) holds since segments are copied where they ask; video
       * mode (bit 2) and a.out addresses (bit 16) are not for these kernels */
      if (flags & ~0x3u & 0xffffu) return ERRF(err, errlen, "multiboot header asks for flags 0x%x this loader does not give", flags);
      if (flags & (1u << 16)) return ERRF(err, errlen, "multiboot header uses the a.out kludge (flag 16); svmconf kernels are ELF");
      found = true;
      break;
    }
  }
  if (!found) return ERRF(err, errlen, "no multiboot v1 header in the first %u bytes", MB_HEADER_SEARCH);

  uint32_t entry = rd32(elf + 24), phoff = rd32(elf + 28);
  uint16_t phentsize = rd16(elf + 42), phnum = rd16(elf + 44);
  if (phentsize < PHDR32_SIZE || phoff > size || (uint64_t)phoff + (uint64_t)phnum * phentsize > size)
    return ERRF(err, errlen, "program headers lie outside the file");

  bool entry_mapped = false;
  uint32_t lowest = UINT32_MAX, highest = 0;
  for (unsigned i = 0; i < phnum; i++) {
    const uint8_t *ph = elf + phoff + (size_t)i * phentsize;
    if (rd32(ph) != PT_LOAD) continue;
    uint32_t offset = rd32(ph + 4), vaddr = rd32(ph + 8), paddr = rd32(ph + 12), filesz = rd32(ph + 16), memsz = rd32(ph + 20);
    if (memsz == 0) continue;
    if (filesz > memsz) return ERRF(err, errlen, "segment %u: file size 0x%x above memory size 0x%x", i, filesz, memsz);
    if ((uint64_t)offset + filesz > size) return ERRF(err, errlen, "segment %u: bytes 0x%x+0x%x lie outside the file", i, offset, filesz);
    if (paddr < LOW_RESERVED_END || (uint64_t)paddr + memsz > ram_size)
      return ERRF(err, errlen, "segment %u: physical 0x%x-0x%llx outside guest RAM 0x%x-0x%zx", i, paddr,
                  (unsigned long long)paddr + memsz, LOW_RESERVED_END, ram_size);
    memcpy(ram + paddr, elf + offset, filesz);
    memset(ram + paddr + filesz, 0, memsz - filesz);
    /* the entry is a virtual address; translate it through the segment that holds it */
    if (entry >= vaddr && entry - vaddr < memsz) {
      out->entry = paddr + (entry - vaddr);
      entry_mapped = true;
    }
    if (paddr < lowest) lowest = paddr;
    if (paddr + memsz - 1 > highest) highest = paddr + memsz - 1;
    out->nsegments++;
  }
  if (out->nsegments == 0) return ERRF(err, errlen, "no loadable segment");
  if (!entry_mapped) return ERRF(err, errlen, "entry point 0x%x lies in no loadable segment", entry);
  out->lowest = lowest;
  out->highest = highest;

  size_t n = strlen(cmdline);
  if (n >= MBI_CMDLINE_MAX) return ERRF(err, errlen, "command line longer than %u bytes", MBI_CMDLINE_MAX - 1);

  /* GDT: null, flat code, flat data; the hidden segment state set in vm.c matches these */
  memset(ram + GDT_ADDR, 0, 24);
  wr64(ram + GDT_ADDR + SEL_CODE32, DESC_CODE32);
  wr64(ram + GDT_ADDR + SEL_DATA32, DESC_DATA32);

  /* information block: flags, mem_lower (KiB below 1 MiB), mem_upper (KiB above 1 MiB), cmdline */
  memset(ram + MBI_ADDR, 0, MBI_CMDLINE_ADDR - MBI_ADDR);
  wr32(ram + MBI_ADDR, MB_INFO_MEMORY | MB_INFO_CMDLINE);
  wr32(ram + MBI_ADDR + 4, 640);
  wr32(ram + MBI_ADDR + 8, (uint32_t)(ram_size / 1024 - 1024));
  wr32(ram + MBI_ADDR + 16, MBI_CMDLINE_ADDR);
  memcpy(ram + MBI_CMDLINE_ADDR, cmdline, n + 1);
  out->mbi = MBI_ADDR;
  return 0;
}
