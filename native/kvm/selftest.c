/*
 * --selftest: the parts that need no /dev/kvm, checked on made-up inputs (test/kvm-native.spec.ts
 * runs it; the loader is also checked there against a real kernel and the model's loader).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "vmm.h"

static int failures, checks;

#define CHECK(cond, ...)                                       \
  do {                                                         \
    checks++;                                                  \
    if (!(cond)) {                                             \
      failures++;                                              \
      fprintf(stdout, "not ok %d - %s:%d: ", checks, __FILE__, __LINE__); \
      fprintf(stdout, __VA_ARGS__);                            \
      fputc('\n', stdout);                                     \
    }                                                          \
  } while (0)

static uint32_t in8(struct io_state *io, uint16_t port) {
  uint32_t v = 0xdeadbe00u;
  io_port(io, port, false, 1, &v);
  return v & 0xff;
}
static void out8(struct io_state *io, uint16_t port, uint32_t v) { io_port(io, port, true, 1, &v); }

static void test_uart(void) {
  int fds[2];
  if (pipe(fds) != 0) {
    CHECK(0, "pipe");
    return;
  }
  struct io_state io;
  io_init(&io, fds[1]);
  CHECK(in8(&io, COM1_BASE + 5) == (UART_LSR_THRE | UART_LSR_TEMT), "LSR reads THRE|TEMT");
  /* serial_init's sequence: DLAB on, divisor 1, DLAB off, 8N1 — the divisor byte is not output */
  out8(&io, COM1_BASE + 3, 0x80);
  out8(&io, COM1_BASE, 0x01);
  out8(&io, COM1_BASE + 1, 0x00);
  CHECK(io.com1_bytes == 0, "a divisor write with DLAB set is not a character (got %llu bytes)", (unsigned long long)io.com1_bytes);
  CHECK(in8(&io, COM1_BASE) == 0x01, "the divisor latch reads back");
  out8(&io, COM1_BASE + 3, 0x03);
  CHECK(in8(&io, COM1_BASE + 3) == 0x03, "LCR reads back");
  out8(&io, COM1_BASE + 7, 0x5a);
  CHECK(in8(&io, COM1_BASE + 7) == 0x5a, "scratch reads back");
  const char *line = "SVMCONF END 0\n";
  for (const char *p = line; *p; p++) out8(&io, COM1_BASE, (uint8_t)*p);
  CHECK(io.com1_bytes == strlen(line), "every THR byte counted");
  CHECK(io.nout == 0, "a newline flushes the line");
  char got[64] = "";
  ssize_t n = read(fds[0], got, sizeof got - 1);
  CHECK(n == (ssize_t)strlen(line) && memcmp(got, line, strlen(line)) == 0, "the line reaches the output fd");
  out8(&io, COM1_BASE, 'x');
  CHECK(io.nout == 1, "a partial line waits in the buffer");
  CHECK(io_flush(&io) == 0 && io.nout == 0, "flush empties it");
  CHECK(io.end == GUEST_RUNNING, "still running");
  close(fds[0]);
  close(fds[1]);
}

static void test_exit_ports(void) {
  struct io_state io;
  io_init(&io, -1);
  uint32_t v = 0xffffffffu;
  io_port(&io, 0x80, false, 1, &v);
  CHECK(v == 0xff && io.other_port_accesses == 1, "an unclaimed port reads all ones, and is counted");
  v = 0;
  io_port(&io, DEBUG_EXIT_PORT, false, 4, &v);
  CHECK(io.end == GUEST_RUNNING, "reading 0xf4 does not exit");
  const char *s = "ShutShutdown";
  for (const char *p = s; *p; p++) {
    CHECK(io.end == GUEST_RUNNING, "no shutdown before the last byte (at '%c')", *p);
    out8(&io, BOCHS_SHUTDOWN_PORT, (uint8_t)*p);
  }
  CHECK(io.end == GUEST_SHUTDOWN_PORT, "\"Shutdown\" after a false start is recognised");
  io_init(&io, -1);
  v = 0x12345678u;
  io_port(&io, DEBUG_EXIT_PORT, true, 4, &v);
  CHECK(io.end == GUEST_DEBUG_EXIT && io.exit_value == 0x12345678u, "a 32-bit write to 0xf4 exits with its value");
  io_init(&io, -1);
  v = 0xabcdu;
  io_port(&io, DEBUG_EXIT_PORT, true, 1, &v);
  CHECK(io.exit_value == 0xcd, "a byte write to 0xf4 exits with the byte");
}

static void test_cpuid(void) {
  struct kvm_cpuid_entry2 e[4];
  char err[256];
  int n = cpuid_parse("# comment\n0 0 0 0x10 0x68747541 0x444d4163 0x69746e65\n\n8000000a 0 0 1 8000 0 0x8 # NRIPS\n", e, 4, err, sizeof err);
  CHECK(n == 2, "two entries parsed (got %d: %s)", n, n < 0 ? err : "");
  if (n == 2) {
    CHECK(e[0].function == 0 && e[0].eax == 0x10 && e[0].ebx == 0x68747541u, "leaf 0 fields");
    CHECK(e[1].function == 0x8000000au && e[1].ebx == 0x8000 && e[1].edx == 0x8, "leaf 8000_000A fields");
  }
  CHECK(cpuid_parse("1 2 3\n", e, 4, err, sizeof err) < 0 && strstr(err, "3 fields"), "a short line is refused: %s", err);
  CHECK(cpuid_parse("1 0 0 0 0 0 zz\n", e, 4, err, sizeof err) < 0 && strstr(err, "field 7"), "a bad number is refused: %s", err);
  CHECK(cpuid_parse("1 0 0 0 0 0 100000000\n", e, 4, err, sizeof err) < 0, "a number above 32 bits is refused");
  CHECK(cpuid_parse("0 0 0 0 0 0 0\n1 0 0 0 0 0 0\n", e, 1, err, sizeof err) < 0 && strstr(err, "more than 1"), "too many entries: %s", err);
}

/* A minimal multiboot ELF32: header, one PT_LOAD with the multiboot header at its start. */
static size_t make_elf(uint8_t *b, size_t cap, uint32_t paddr, uint32_t entry, uint32_t filesz, uint32_t memsz, bool header) {
  memset(b, 0, cap);
  memcpy(b, "\x7f" "ELF", 4);
  b[4] = 1; /* ELFCLASS32 */
  b[5] = 1; /* little-endian */
  b[6] = 1;
  b[16] = 2; /* ET_EXEC */
  b[18] = 3; /* EM_386 */
  b[20] = 1;
  memcpy(b + 24, &entry, 4);
  uint32_t phoff = 52;
  memcpy(b + 28, &phoff, 4);
  b[40] = 52;  /* ehsize */
  b[42] = 32;  /* phentsize */
  b[44] = 1;   /* phnum */
  uint8_t *ph = b + 52;
  uint32_t type = 1, off = 0x100;
  memcpy(ph, &type, 4);
  memcpy(ph + 4, &off, 4);
  memcpy(ph + 8, &paddr, 4);
  memcpy(ph + 12, &paddr, 4);
  memcpy(ph + 16, &filesz, 4);
  memcpy(ph + 20, &memsz, 4);
  if (header) {
    uint32_t m = MB_HEADER_MAGIC, f = 2, c = (uint32_t)-(int32_t)(MB_HEADER_MAGIC + 2);
    memcpy(b + off, &m, 4);
    memcpy(b + off + 4, &f, 4);
    memcpy(b + off + 8, &c, 4);
  }
  for (uint32_t i = 12; i < filesz; i++) b[off + i] = (uint8_t)(0xa0 + i);
  return off + filesz;
}

static void test_loader(void) {
  size_t ram_size = 4 * MIB;
  uint8_t *ram = calloc(1, ram_size);
  uint8_t elf[0x400];
  char err[256];
  struct load_info li;
  if (!ram) {
    CHECK(0, "out of memory");
    return;
  }
  memset(ram, 0x77, ram_size);
  size_t n = make_elf(elf, sizeof elf, 0x100000, 0x10000c, 0x40, 0x1000, true);
  int r = load_multiboot(elf, n, ram, ram_size, "start=2 end=5", &li, err, sizeof err);
  CHECK(r == 0, "a good image loads (%s)", r ? err : "");
  if (r == 0) {
    CHECK(li.entry == 0x10000c && li.mbi == MBI_ADDR && li.nsegments == 1, "entry 0x%x mbi 0x%x", li.entry, li.mbi);
    CHECK(ram[0x100000 + 12] == 0xa0 + 12 && ram[0x100000 + 0x3f] == 0xa0 + 0x3f, "file bytes copied");
    CHECK(ram[0x100000 + 0x40] == 0 && ram[0x100000 + 0xfff] == 0, "memory size beyond the file zeroed");
    CHECK(ram[0x100000 + 0x1000] == 0x77, "nothing written past the segment");
    uint32_t flags, lower, upper, cmd;
    memcpy(&flags, ram + MBI_ADDR, 4);
    memcpy(&lower, ram + MBI_ADDR + 4, 4);
    memcpy(&upper, ram + MBI_ADDR + 8, 4);
    memcpy(&cmd, ram + MBI_ADDR + 16, 4);
    CHECK(flags == (MB_INFO_MEMORY | MB_INFO_CMDLINE) && lower == 640 && upper == 3 * 1024, "mbi flags 0x%x lower %u upper %u", flags, lower,
          upper);
    CHECK(cmd == MBI_CMDLINE_ADDR && strcmp((char *)ram + cmd, "start=2 end=5") == 0, "command line");
    uint64_t code;
    memcpy(&code, ram + GDT_ADDR + SEL_CODE32, 8);
    CHECK(code == 0x00cf9b000000ffffull, "GDT code descriptor");
  }
  r = load_multiboot(elf, n, ram, ram_size, "", &li, err, sizeof err);
  CHECK(r == 0, "an empty command line is fine");
  n = make_elf(elf, sizeof elf, 0x100000, 0x10000c, 0x40, 0x1000, false);
  CHECK(load_multiboot(elf, n, ram, ram_size, "", &li, err, sizeof err) < 0 && strstr(err, "no multiboot"), "no header: %s", err);
  n = make_elf(elf, sizeof elf, 0x3ff000, 0x3ff00c, 0x40, 0x2000, true);
  CHECK(load_multiboot(elf, n, ram, ram_size, "", &li, err, sizeof err) < 0 && strstr(err, "outside guest RAM"), "beyond RAM: %s", err);
  n = make_elf(elf, sizeof elf, 0x100000, 0x200000, 0x40, 0x1000, true);
  CHECK(load_multiboot(elf, n, ram, ram_size, "", &li, err, sizeof err) < 0 && strstr(err, "entry point"), "entry outside: %s", err);
  n = make_elf(elf, sizeof elf, 0x100000, 0x10000c, 0x40, 0x1000, true);
  elf[4] = 2;
  CHECK(load_multiboot(elf, n, ram, ram_size, "", &li, err, sizeof err) < 0 && strstr(err, "ELF32"), "ELF64 refused: %s", err);
  CHECK(load_multiboot((const uint8_t *)"hello", 5, ram, ram_size, "", &li, err, sizeof err) < 0 && strstr(err, "not an ELF"), "not ELF: %s",
        err);
  free(ram);
}

static void test_json(void) {
  char b[64] = "";
  json_string(b, sizeof b, "a\"b\\c\n");
  CHECK(strcmp(b, "\"a\\\"b\\\\c\\u000a\"") == 0, "json escaping: %s", b);
}

int selftest(void) {
  test_uart();
  test_exit_ports();
  test_cpuid();
  test_loader();
  test_json();
  printf("%s %d checks, %d failed\n", failures ? "FAIL" : "ok", checks, failures);
  return failures ? 1 : 0;
}
