/*
 * svmconf-kvm: a small VMM over /dev/kvm that boots one svmconf batch kernel
 * (docs/backends/kvm.md "The helper"). This header holds the constants of the guest's world and
 * the interfaces between the parts, one file per idea:
 *
 *   main.c      command line, the run loop, the final status line
 *   loader.c    multiboot v1 ELF32 loader and the multiboot information block (pure)
 *   io.c        COM1, the exit ports (pure state machine, no KVM)
 *   cpuid.c     the CPUID table the runner hands in (text, pure)
 *   vm.c        VM and vCPU creation, the multiboot entry state, capability checks
 *   state.c     save and restore of the whole vCPU (the --torture mode)
 *   json.c      JSON text for the status line (json.h)
 *   selftest.c  checks of the pure parts, runnable without /dev/kvm (--selftest)
 */
#ifndef SVMCONF_KVM_VMM_H
#define SVMCONF_KVM_VMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <linux/kvm.h>

/* ---- the guest's world: memory map, multiboot numbers, ports ----
 * Generated from arch/layout.ts by arch/c-header.ts into build/native/svmconf-arch.h (make native
 * writes it first and compiles with -I build/native): GDT_ADDR, SEL_CODE32/SEL_DATA32, MBI_ADDR,
 * MBI_CMDLINE_ADDR, MBI_CMDLINE_MAX, LOW_RESERVED_END, DEFAULT_RAM_MIB, MB_*, COM1_BASE, UART_*,
 * DEBUG_EXIT_PORT, BOCHS_SHUTDOWN_PORT. */
#include "svmconf-arch.h"

#define MIB (1024u * 1024u)

/* ---- CPUID table ---- */
#define CPUID_MAX_ENTRIES 256u

/* ---- loader ---- */
struct load_info {
  uint32_t entry;       /* physical entry point */
  uint32_t lowest;      /* lowest and highest physical byte loaded */
  uint32_t highest;
  unsigned nsegments;
  uint32_t mbi;         /* EBX */
};

/* Load a multiboot ELF32 kernel image into ram (ram_size bytes at guest physical 0), write the GDT
 * and the information block with cmdline. Returns 0, or -1 with a message in err. */
int load_multiboot(const uint8_t *elf, size_t elf_size, uint8_t *ram, size_t ram_size, const char *cmdline,
                   struct load_info *out, char *err, size_t errlen);

/* ---- io ---- */
enum guest_end {
  GUEST_RUNNING = 0,
  GUEST_DEBUG_EXIT,     /* value written to port 0xf4 */
  GUEST_SHUTDOWN_PORT,  /* "Shutdown" on 0x8900 */
};

struct io_state {
  /* 16550 registers the runtime writes (IER, LCR, MCR, scratch, divisor latch) and reads back */
  uint8_t ier, lcr, mcr, scr, fcr, dll, dlm;
  /* COM1 bytes not yet written to the output fd */
  uint8_t out[4096];
  size_t nout;
  int out_fd;
  uint64_t com1_bytes;
  unsigned shutdown_pos;      /* how much of "Shutdown" has been matched */
  uint64_t other_port_accesses;
  enum guest_end end;
  uint32_t exit_value;
};

void io_init(struct io_state *io, int out_fd);
/* One port access of `size` bytes (1, 2, 4). For IN, *value receives what the guest reads. */
void io_port(struct io_state *io, uint16_t port, bool is_write, unsigned size, uint32_t *value);
/* Write the buffered COM1 bytes; returns 0 or -1 (errno set). */
int io_flush(struct io_state *io);

/* ---- cpuid ---- */
/* Parse the runner's CPUID table: one entry per line, `function index flags eax ebx ecx edx` in
 * hex (0x optional); `#` starts a comment. Returns the number of entries or -1 with err. */
int cpuid_parse(const char *text, struct kvm_cpuid_entry2 *entries, unsigned max, char *err, size_t errlen);

/* ---- vm ---- */
struct caps {
  int api_version;
  int vcpu_mmap_size;
  int nested_state_size; /* KVM_CAP_NESTED_STATE: 0 = no nested state */
  int xsave2_size;       /* KVM_CAP_XSAVE2: 0 = not there */
  bool xsave, xcrs, sregs2, split_irqchip, exception_payload, immediate_exit, debugregs, vcpu_events, tss_addr;
};

struct vm {
  int kvm_fd;
  int vm_fd;
  int vcpu_fd;
  struct kvm_run *run;
  uint8_t *ram;
  size_t ram_size;
  struct caps caps;
  bool irqchip; /* in-kernel LAPIC (split irqchip) */
  struct kvm_cpuid2 *cpuid;
};

int vm_open_kvm(struct vm *vm, char *err, size_t errlen);
void vm_read_caps(int fd, struct caps *caps);
/* Create the VM and its vCPU over vm->ram, with vm->cpuid; vm->kvm_fd must be open. */
int vm_create(struct vm *vm, char *err, size_t errlen);
void vm_destroy(struct vm *vm);
/* The multiboot entry state (Multiboot 0.6.96 3.2): 32-bit protected mode, flat segments. */
int vm_set_entry_state(struct vm *vm, const struct load_info *li, char *err, size_t errlen);
/* KVM_GET_SUPPORTED_CPUID into a new table (free()), or NULL with err. */
struct kvm_cpuid2 *vm_supported_cpuid(int kvm_fd, char *err, size_t errlen);

/* ---- state (torture) ---- */
struct vcpu_state;
struct torture_stats {
  uint64_t restores;          /* save + destroy + create + restore cycles done */
  uint64_t at_exit;           /* of which at an exit to user space */
  uint64_t at_timer;          /* of which at a timer signal (arbitrary points) */
  unsigned msrs_saved;        /* MSRs in the saved set */
  unsigned msrs_unreadable;   /* MSRs of KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS refused */
  unsigned msrs_unwritable;   /* MSRs KVM_SET_MSRS refused on restore (then left out) */
  uint32_t unwritable[16];
  uint32_t nested_bytes;      /* size of the last nested state saved */
  uint16_t nested_flags;
  bool saw_guest_mode;        /* a save happened while L2 ran (KVM_STATE_NESTED_GUEST_MODE) */
};

struct vcpu_state *state_new(struct vm *vm, char *err, size_t errlen);
void state_free(struct vcpu_state *s);
int state_save(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen);
int state_restore(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen);

/* ---- helpers ---- */
#define ERRF(err, errlen, ...) (snprintf((err), (errlen), __VA_ARGS__), -1)
int selftest(void);

#endif
