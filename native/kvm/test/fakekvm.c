/*
 * fakekvm.so: a stand-in for /dev/kvm, LD_PRELOADed into svmconf-kvm by test/kvm-native.spec.ts on
 * machines without KVM. It is NOT a model of KVM or of a CPU: it answers the ioctls the helper
 * makes with plausible shapes and plays a scripted guest, so that the helper's own logic — the run
 * loop, port handling, the status line, and the --torture cycle (complete pending I/O, save,
 * destroy, create, restore, in order) — runs and can be checked here. What it proves is that the
 * helper drives the API in the documented way, not that KVM accepts it.
 *
 * The scripted guest prints the bytes of $FAKEKVM_OUTPUT on COM1 as the svmconf runtime does (an
 * LSR read, then a THR write, per byte) and leaves through port 0xf4. Its progress lives in the
 * vCPU's general registers (r8 = byte index, r9 = phase, r10 = the LSR value read), so a torture
 * cycle that lost the registers, or saved before KVM completed a port read, changes the output.
 * It checks what real KVM would refuse or lose: CPUID set before any other vCPU state, special
 * registers before the nested state, the multiboot entry state on the first run.
 *
 *   FAKEKVM_OUTPUT      file of COM1 bytes to print (required to run)
 *   FAKEKVM_CPUID_OUT   file the guest CPUID of KVM_SET_CPUID2 is written to (optional)
 *   FAKEKVM_FAIL_AT     after this many exits, a KVM_EXIT_INTERNAL_ERROR (suberror 1) (optional)
 *   FAKEKVM_LOG         file receiving one line per VM created and per ordering problem (optional)
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>
#include <linux/kvm.h>

enum kind { NONE, SYS, VM, VCPU };
#define MAXFD 1024
static enum kind fds[MAXFD];

/* the one vCPU's state (a new vCPU starts from zero, as after KVM_CREATE_VCPU) */
static struct {
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  bool cpuid_set, sregs_set, nested_set;
  struct kvm_run *run;
  bool pending_in, pending_out;
  uint64_t msr[3];
} v;

static const uint32_t MSR_INDEX[3] = {0x10 /* TSC: readable */, 0xc0000100 /* FS base: unreadable here */, 0xc0010117 /* HSAVE: not writable */};
static unsigned long total_exits, runs;
static unsigned char *script;
static size_t script_len;

static int (*real_open)(const char *, int, ...);
static int (*real_ioctl)(int, unsigned long, ...);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static int (*real_close)(int);

static void init(void) {
  if (real_open) return;
  real_open = dlsym(RTLD_NEXT, "open");
  real_ioctl = dlsym(RTLD_NEXT, "ioctl");
  real_mmap = dlsym(RTLD_NEXT, "mmap");
  real_close = dlsym(RTLD_NEXT, "close");
}

static void logf_(const char *fmt, ...) {
  const char *p = getenv("FAKEKVM_LOG");
  if (!p) return;
  FILE *f = fopen(p, "a");
  if (!f) return;
  va_list ap;
  va_start(ap, fmt);
  vfprintf(f, fmt, ap);
  va_end(ap);
  fputc('\n', f);
  fclose(f);
}

static int new_fd(enum kind k) {
  int fd = real_open("/dev/null", O_RDWR | O_CLOEXEC);
  if (fd >= 0 && fd < MAXFD) fds[fd] = k;
  return fd;
}

int open(const char *path, int flags, ...) {
  init();
  if (strcmp(path, "/dev/kvm") == 0) return new_fd(SYS);
  va_list ap;
  va_start(ap, flags);
  int mode = va_arg(ap, int);
  va_end(ap);
  return real_open(path, flags, mode);
}
int open64(const char *path, int flags, ...) __attribute__((alias("open")));

int close(int fd) {
  init();
  if (fd >= 0 && fd < MAXFD) fds[fd] = NONE;
  return real_close(fd);
}

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off) {
  init();
  if (fd >= 0 && fd < MAXFD && fds[fd] == VCPU) {
    void *p = real_mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) v.run = p;
    return p;
  }
  return real_mmap(addr, len, prot, flags, fd, off);
}
void *mmap64(void *, size_t, int, int, int, off_t) __attribute__((alias("mmap")));

static int fail(int e) {
  errno = e;
  return -1;
}

static void load_script(void) {
  if (script) return;
  const char *p = getenv("FAKEKVM_OUTPUT");
  FILE *f = p ? fopen(p, "rb") : NULL;
  if (!f) {
    script = (unsigned char *)strdup("");
    return;
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  script = malloc((size_t)n + 1);
  script_len = fread(script, 1, (size_t)n, f);
  fclose(f);
}

static int io_exit(struct kvm_run *r, uint8_t dir, uint16_t port, uint8_t size, uint32_t value) {
  r->exit_reason = KVM_EXIT_IO;
  r->io.direction = dir;
  r->io.port = port;
  r->io.size = size;
  r->io.count = 1;
  r->io.data_offset = 4096 - 64; /* inside the mapping, as KVM's PIO page would be */
  memcpy((uint8_t *)r + r->io.data_offset, &value, size);
  return 0;
}

static int run_vcpu(void) {
  struct kvm_run *r = v.run;
  /* finish what the last exit left (api.rst: done at the next KVM_RUN, before immediate_exit) */
  if (v.pending_in) {
    uint8_t lsr;
    memcpy(&lsr, (uint8_t *)r + r->io.data_offset, 1);
    v.regs.r10 = lsr;
    v.regs.r9 = 2;
    v.pending_in = false;
  } else if (v.pending_out) {
    v.regs.r8++;
    v.regs.r9 = 0;
    v.pending_out = false;
  }
  if (r->immediate_exit) {
    r->exit_reason = KVM_EXIT_INTR;
    return fail(EINTR);
  }
  if (runs++ == 0 && (v.regs.rax != 0x2BADB002 || v.sregs.cs.selector != 0x08 || !(v.sregs.cr0 & 1) || !v.sregs.cs.db)) {
    logf_("bad entry state: rax=%llx cs=%x cr0=%llx", (unsigned long long)v.regs.rax, v.sregs.cs.selector, (unsigned long long)v.sregs.cr0);
    r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    r->internal.suberror = 99;
    r->internal.ndata = 0;
    return 0;
  }
  /* a guest instruction takes time: a timer signal may land here, as in a real KVM_RUN */
  struct timespec ts = {0, 20000};
  if (nanosleep(&ts, NULL) < 0 && errno == EINTR) {
    r->exit_reason = KVM_EXIT_INTR;
    return fail(EINTR);
  }
  const char *fa = getenv("FAKEKVM_FAIL_AT");
  if (fa && total_exits >= strtoul(fa, NULL, 10)) {
    r->exit_reason = KVM_EXIT_INTERNAL_ERROR;
    r->internal.suberror = KVM_INTERNAL_ERROR_EMULATION;
    r->internal.ndata = 2;
    r->internal.data[0] = 1;
    r->internal.data[1] = 0xfeeb0b0f02ebcc0full;
    v.regs.rip = 0x1001bd;
    return 0;
  }
  total_exits++;
  load_script();
  if (v.regs.r8 >= script_len) return io_exit(r, KVM_EXIT_IO_OUT, 0xf4, 4, 0);
  if (v.regs.r9 == 0) {
    v.pending_in = true;
    return io_exit(r, KVM_EXIT_IO_IN, 0x3fd, 1, 0);
  }
  if (!(v.regs.r10 & 0x20)) { /* the byte would be lost on a real UART */
    logf_("THR written without THRE (LSR %llx)", (unsigned long long)v.regs.r10);
    v.regs.r9 = 0;
    return run_vcpu();
  }
  v.pending_out = true;
  return io_exit(r, KVM_EXIT_IO_OUT, 0x3f8, 1, script[v.regs.r8]);
}

static void write_cpuid(const struct kvm_cpuid2 *c) {
  const char *p = getenv("FAKEKVM_CPUID_OUT");
  FILE *f = p ? fopen(p, "w") : NULL;
  if (!f) return;
  for (unsigned i = 0; i < c->nent; i++)
    fprintf(f, "%x %x %x %x %x %x %x\n", c->entries[i].function, c->entries[i].index, c->entries[i].flags, c->entries[i].eax, c->entries[i].ebx,
            c->entries[i].ecx, c->entries[i].edx);
  fclose(f);
}

#define NEED_CPUID()                                         \
  do {                                                       \
    if (!v.cpuid_set) {                                      \
      logf_("vCPU state set before KVM_SET_CPUID2 (0x%lx)", req); \
      return fail(EINVAL);                                   \
    }                                                        \
  } while (0)

int ioctl(int fd, unsigned long req, ...) {
  init();
  va_list ap;
  va_start(ap, req);
  void *arg = va_arg(ap, void *);
  va_end(ap);
  enum kind k = fd >= 0 && fd < MAXFD ? fds[fd] : NONE;
  if (k == NONE) return real_ioctl(fd, req, arg);
  switch (req) {
    case KVM_GET_API_VERSION: return KVM_API_VERSION;
    case KVM_GET_VCPU_MMAP_SIZE: return 4096;
    case KVM_CHECK_EXTENSION:
      switch ((long)arg) {
        case KVM_CAP_NESTED_STATE: return 256;
        case KVM_CAP_XSAVE2: return 4096;
        case KVM_CAP_XSAVE: case KVM_CAP_XCRS: case KVM_CAP_SREGS2: case KVM_CAP_SPLIT_IRQCHIP: case KVM_CAP_EXCEPTION_PAYLOAD:
        case KVM_CAP_IMMEDIATE_EXIT: case KVM_CAP_DEBUGREGS: case KVM_CAP_VCPU_EVENTS: case KVM_CAP_SET_TSS_ADDR: return 1;
        default: return 0;
      }
    case KVM_GET_SUPPORTED_CPUID: {
      struct kvm_cpuid2 *c = arg;
      if (c->nent < 3) return fail(E2BIG);
      c->nent = 3;
      memset(c->entries, 0, 3 * sizeof c->entries[0]);
      c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 0xd, .ebx = 0x68747541, .ecx = 0x444d4163, .edx = 0x69746e65};
      c->entries[1] = (struct kvm_cpuid_entry2){.function = 0x80000001, .ecx = 0x4, .edx = 1u << 29};
      c->entries[2] = (struct kvm_cpuid_entry2){.function = 0x8000000a, .eax = 1, .ebx = 8, .edx = 0x9};
      return 0;
    }
    case KVM_GET_MSR_INDEX_LIST: {
      struct kvm_msr_list *l = arg;
      if (l->nmsrs < 3) {
        l->nmsrs = 3;
        return fail(E2BIG);
      }
      l->nmsrs = 3;
      memcpy(l->indices, MSR_INDEX, sizeof MSR_INDEX);
      return 0;
    }
    case KVM_CREATE_VM:
      logf_("create vm");
      return new_fd(VM);
    case KVM_SET_TSS_ADDR: case KVM_ENABLE_CAP: case KVM_SET_USER_MEMORY_REGION: return 0;
    case KVM_CREATE_VCPU: {
      memset(&v.regs, 0, sizeof v.regs);
      memset(&v.sregs, 0, sizeof v.sregs);
      v.cpuid_set = v.sregs_set = v.nested_set = false;
      memset(v.msr, 0, sizeof v.msr);
      /* a pending port access dies with the vCPU, as in KVM */
      v.pending_in = v.pending_out = false;
      return new_fd(VCPU);
    }
    case KVM_SET_CPUID2:
      v.cpuid_set = true;
      write_cpuid(arg);
      return 0;
    case KVM_RUN: NEED_CPUID(); return run_vcpu();
    case KVM_GET_REGS: memcpy(arg, &v.regs, sizeof v.regs); return 0;
    case KVM_SET_REGS: NEED_CPUID(); memcpy(&v.regs, arg, sizeof v.regs); return 0;
    case KVM_GET_SREGS: memcpy(arg, &v.sregs, sizeof v.sregs); return 0;
    case KVM_SET_SREGS: NEED_CPUID(); memcpy(&v.sregs, arg, sizeof v.sregs); v.sregs_set = true; return 0;
    case KVM_GET_SREGS2: {
      struct kvm_sregs2 *s = arg;
      memset(s, 0, sizeof *s);
      s->cs = v.sregs.cs;
      s->cr0 = v.sregs.cr0;
      return 0;
    }
    case KVM_SET_SREGS2: {
      NEED_CPUID();
      const struct kvm_sregs2 *s = arg;
      v.sregs.cs = s->cs;
      v.sregs.cr0 = s->cr0;
      v.sregs_set = true;
      return 0;
    }
    case KVM_GET_NESTED_STATE: {
      struct kvm_nested_state *n = arg;
      if (n->size < 256) return fail(E2BIG);
      memset(n, 0, 256);
      n->format = KVM_STATE_NESTED_FORMAT_SVM;
      n->flags = KVM_STATE_NESTED_GIF_SET;
      n->size = 128;
      return 0;
    }
    case KVM_SET_NESTED_STATE:
      NEED_CPUID();
      /* QEMU's rule: special registers first, so EFER.SVME is in place */
      if (!v.sregs_set) {
        logf_("KVM_SET_NESTED_STATE before the special registers");
        return fail(EINVAL);
      }
      v.nested_set = true;
      return 0;
    case KVM_GET_MSRS: {
      struct kvm_msrs *m = arg;
      for (unsigned i = 0; i < m->nmsrs; i++) {
        int j = m->entries[i].index == MSR_INDEX[0] ? 0 : m->entries[i].index == MSR_INDEX[2] ? 2 : -1;
        if (j < 0) return (int)i; /* stops at the first it cannot read */
        m->entries[i].data = v.msr[j];
      }
      return (int)m->nmsrs;
    }
    case KVM_SET_MSRS: {
      NEED_CPUID();
      struct kvm_msrs *m = arg;
      for (unsigned i = 0; i < m->nmsrs; i++) {
        if (m->entries[i].index != MSR_INDEX[0]) return (int)i;
        v.msr[0] = m->entries[i].data;
      }
      return (int)m->nmsrs;
    }
    case KVM_GET_XSAVE2: case KVM_GET_XSAVE: memset(arg, 0, 4096); return 0;
    case KVM_GET_XCRS: memset(arg, 0, sizeof(struct kvm_xcrs)); return 0;
    case KVM_GET_LAPIC: memset(arg, 0, sizeof(struct kvm_lapic_state)); return 0;
    case KVM_GET_MP_STATE: memset(arg, 0, sizeof(struct kvm_mp_state)); return 0;
    case KVM_GET_VCPU_EVENTS: memset(arg, 0, sizeof(struct kvm_vcpu_events)); return 0;
    case KVM_GET_DEBUGREGS: memset(arg, 0, sizeof(struct kvm_debugregs)); return 0;
    case KVM_SET_XSAVE: case KVM_SET_XCRS: case KVM_SET_LAPIC: case KVM_SET_MP_STATE: case KVM_SET_VCPU_EVENTS: case KVM_SET_DEBUGREGS:
      NEED_CPUID();
      return 0;
    default:
      logf_("unhandled ioctl 0x%lx on a %s fd", req, k == SYS ? "system" : k == VM ? "VM" : "vCPU");
      return fail(ENOTTY);
  }
}
