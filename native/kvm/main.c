/*
 * svmconf-kvm: boot one svmconf batch kernel on /dev/kvm (docs/backends/kvm.md).
 *
 *   svmconf-kvm --kernel K.elf [--cmdline "start=0 end=3"] [--mem-mib 128] [--cpuid FILE|-]
 *               [--torture] [--torture-timer-us N] [--torture-every N] [--torture-control]
 *   svmconf-kvm --probe                 what KVM offers here, as JSON (capabilities, supported CPUID)
 *   svmconf-kvm --check --kernel K.elf  load only (no /dev/kvm): the loader's result as JSON
 *               [--dump FILE]           ... and guest RAM below the kernel's end written to FILE
 *               [--cpuid FILE|-]        ... and the CPUID table as parsed
 *   svmconf-kvm --selftest              the pure parts' own checks (no /dev/kvm)
 *
 * Output: COM1's bytes on stdout, as they come. The last line on stderr is the outcome, one JSON
 * object after the prefix "SVMCONF-KVM " (runner/backends/kvm.ts reads it):
 *   {"end":"exited","reason":"debug-exit","value":0,...}         the guest left through a port
 *   {"end":"crashed","reason":"internal-error","suberror":1,...}  KVM or the guest failed
 *   {"end":"error","reason":"setup","detail":"..."}              the VMM could not start the guest
 * with "rip", the counters, and under --torture the save/restore counts. Exit status 0 exited,
 * 1 crashed, 2 error, 3 usage.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "vmm.h"

#define STATUS_PREFIX "SVMCONF-KVM "
enum { EXIT_OK = 0, EXIT_CRASHED = 1, EXIT_ERROR = 2, EXIT_USAGE = 3 };

/* the vCPU's kvm_run, for the timer signal handler (set only while signals cannot run) */
static struct kvm_run *volatile g_run;
/* set by each timer signal; the loop re-arms the one-shot timer when it sees it */
static volatile sig_atomic_t g_timer_fired;

static void on_timer(int sig) {
  (void)sig;
  g_timer_fired = 1;
  struct kvm_run *r = g_run;
  /* api.rst: with immediate_exit set, KVM_RUN returns -EINTR at once; a signal arriving while the
   * guest runs also makes it return -EINTR. Either way the loop gets control at an arbitrary point */
  if (r) r->immediate_exit = 1;
}

static char status[8192];

static void kv_str(const char *key, const char *v) {
  size_t n = strlen(status);
  snprintf(status + n, sizeof status - n, "%s\"%s\":", n > 1 ? "," : "", key);
  json_string(status, sizeof status, v);
}
static void kv_num(const char *key, unsigned long long v) {
  size_t n = strlen(status);
  snprintf(status + n, sizeof status - n, "%s\"%s\":%llu", n > 1 ? "," : "", key, v);
}
static void kv_hex(const char *key, unsigned long long v) {
  char b[32];
  snprintf(b, sizeof b, "0x%llx", v);
  kv_str(key, b);
}
static void kv_raw(const char *key, const char *json) {
  size_t n = strlen(status);
  snprintf(status + n, sizeof status - n, "%s\"%s\":%s", n > 1 ? "," : "", key, json);
}

static int finish(int code) {
  size_t n = strlen(status);
  snprintf(status + n, sizeof status - n, "}");
  fprintf(stderr, STATUS_PREFIX "%s\n", status);
  return code;
}

static int fail(const char *end, const char *reason, const char *detail, int code) {
  strcpy(status, "{");
  kv_str("end", end);
  kv_str("reason", reason);
  kv_str("detail", detail);
  return finish(code);
}

static int usage(const char *msg) {
  fprintf(stderr, "svmconf-kvm: %s\nusage: svmconf-kvm --kernel FILE [--cmdline TEXT] [--mem-mib N] [--cpuid FILE|-] [--torture] "
                  "[--torture-timer-us N] [--torture-every N] [--torture-control]\n       svmconf-kvm --probe | --selftest | --check --kernel FILE [--cmdline TEXT] [--dump FILE]\n",
          msg);
  return fail("error", "usage", msg, EXIT_USAGE);
}

static uint8_t *read_file(const char *path, size_t *size, char *err, size_t errlen) {
  int fd = strcmp(path, "-") == 0 ? 0 : open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    (void)ERRF(err, errlen, "cannot open %s: %s", path, strerror(errno));
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  uint8_t *buf = malloc(cap + 1);
  for (;;) {
    if (!buf) break;
    if (n == cap) {
      uint8_t *nb = realloc(buf, (cap *= 2) + 1);
      if (!nb) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = nb;
    }
    ssize_t r = read(fd, buf + n, cap - n);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      (void)ERRF(err, errlen, "cannot read %s: %s", path, strerror(errno));
      free(buf);
      buf = NULL;
      break;
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  if (fd != 0) close(fd);
  if (!buf) {
    if (!err[0]) (void)ERRF(err, errlen, "out of memory reading %s", path);
    return NULL;
  }
  buf[n] = 0;
  *size = n;
  return buf;
}

/* ---------------------------------------------------------------- --probe */

static int probe(void) {
  char err[512] = "";
  struct vm vm;
  memset(&vm, 0, sizeof vm);
  if (vm_open_kvm(&vm, err, sizeof err) < 0) return fail("error", "no-kvm", err, EXIT_ERROR);
  /* capabilities that are answered per VM need a VM */
  int vm_fd = ioctl(vm.kvm_fd, KVM_CREATE_VM, 0);
  if (vm_fd < 0) {
    snprintf(err, sizeof err, "KVM_CREATE_VM: %s", strerror(errno));
    return fail("error", "no-kvm", err, EXIT_ERROR);
  }
  vm_read_caps(vm_fd, &vm.caps);
  close(vm_fd);
  struct kvm_cpuid2 *c = vm_supported_cpuid(vm.kvm_fd, err, sizeof err);
  if (!c) return fail("error", "probe", err, EXIT_ERROR);
  printf("{\"api\":%d,\"caps\":{\"nested_state\":%d,\"xsave2\":%d,\"xsave\":%s,\"xcrs\":%s,\"sregs2\":%s,"
         "\"split_irqchip\":%s,\"exception_payload\":%s,\"immediate_exit\":%s,\"debugregs\":%s,\"vcpu_events\":%s},\"cpuid\":[",
         vm.caps.api_version, vm.caps.nested_state_size, vm.caps.xsave2_size, vm.caps.xsave ? "true" : "false",
         vm.caps.xcrs ? "true" : "false", vm.caps.sregs2 ? "true" : "false", vm.caps.split_irqchip ? "true" : "false",
         vm.caps.exception_payload ? "true" : "false", vm.caps.immediate_exit ? "true" : "false",
         vm.caps.debugregs ? "true" : "false", vm.caps.vcpu_events ? "true" : "false");
  for (unsigned i = 0; i < c->nent; i++) {
    const struct kvm_cpuid_entry2 *e = &c->entries[i];
    printf("%s\n{\"function\":%u,\"index\":%u,\"flags\":%u,\"eax\":%u,\"ebx\":%u,\"ecx\":%u,\"edx\":%u}", i ? "," : "", e->function,
           e->index, e->flags, e->eax, e->ebx, e->ecx, e->edx);
  }
  printf("]}\n");
  free(c);
  close(vm.kvm_fd);
  strcpy(status, "{");
  kv_str("end", "probed");
  return finish(EXIT_OK);
}

/* ---------------------------------------------------------------- the run */

struct options {
  const char *kernel, *cmdline, *cpuid, *dump;
  unsigned mem_mib;
  bool torture, check;
  unsigned timer_us;
  /* torture at every Nth exit to user space (1: every exit); the timer is not thinned */
  unsigned torture_every;
  /* the control run of --torture: its exits without the save/restore */
  bool torture_control;
};

static const char *suberror_name(uint32_t s) {
  switch (s) {
    case KVM_INTERNAL_ERROR_EMULATION: return "emulation failure";
    case KVM_INTERNAL_ERROR_SIMUL_EX: return "simultaneous exceptions";
    case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
    case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
    default: return "unknown suberror";
  }
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct counters {
  uint64_t exits, io_exits, mmio_exits, intr_exits;
};

static void add_common(const struct io_state *io, const struct counters *k, const struct options *o, const struct torture_stats *st,
                       double t0, struct vm *vm) {
  kv_num("exits", k->exits);
  kv_num("io_exits", k->io_exits);
  kv_num("mmio_exits", k->mmio_exits);
  kv_num("com1_bytes", io->com1_bytes);
  kv_num("other_port_accesses", io->other_port_accesses);
  char secs[32];
  snprintf(secs, sizeof secs, "%.6f", now() - t0);
  kv_raw("seconds", secs);
  kv_raw("irqchip", vm->irqchip ? "true" : "false");
  if (o->torture) {
    char t[1024];
    int n = snprintf(t, sizeof t,
                     "{\"restores\":%llu,\"control\":%s,\"every\":%u,\"at_exit\":%llu,\"at_timer\":%llu,\"msrs_saved\":%u,\"msrs_unreadable\":%u,"
                     "\"msrs_unwritable\":%u,\"nested_state_bytes\":%u,\"nested_flags\":%u,\"saw_guest_mode\":%s,\"unwritable\":[",
                     (unsigned long long)st->restores, o->torture_control ? "true" : "false", o->torture_every, (unsigned long long)st->at_exit, (unsigned long long)st->at_timer, st->msrs_saved,
                     st->msrs_unreadable, st->msrs_unwritable, st->nested_bytes, st->nested_flags, st->saw_guest_mode ? "true" : "false");
    for (unsigned i = 0; i < st->msrs_unwritable && i < 16 && n > 0 && (size_t)n < sizeof t - 16; i++)
      n += snprintf(t + n, sizeof t - (size_t)n, "%s\"0x%x\"", i ? "," : "", st->unwritable[i]);
    if (n > 0 && (size_t)n < sizeof t - 3) snprintf(t + n, sizeof t - (size_t)n, "]}");
    kv_raw("torture", t);
  }
}

static void add_rip(struct vm *vm) {
  struct kvm_regs r;
  struct kvm_sregs s;
  if (ioctl(vm->vcpu_fd, KVM_GET_REGS, &r) == 0) kv_hex("rip", r.rip);
  if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &s) == 0) {
    kv_hex("cs", s.cs.selector);
    kv_num("cs_l", s.cs.l);
    kv_num("cs_db", s.cs.db);
  }
}

static void arm_timer(unsigned us) {
  struct itimerval it = {{0, 0}, {(time_t)(us / 1000000u), (suseconds_t)(us % 1000000u)}};
  setitimer(ITIMER_REAL, &it, NULL);
}

/* The timer is one-shot and paused while a cycle runs: it fires after timer_us of the guest
 * running (and of exits being served), however long the cycles in between take. Counting the
 * cycles too starved the guest where a cycle costs more than the period (40 ms on the TCG host
 * against a 5 ms timer: every exit's cycle found the timer expired and ran a second one). */
static struct itimerval pause_timer(const struct options *o) {
  struct itimerval off, left;
  memset(&off, 0, sizeof off);
  memset(&left, 0, sizeof left);
  if (o->timer_us > 0) setitimer(ITIMER_REAL, &off, &left);
  return left;
}

static void resume_timer(const struct options *o, struct itimerval left) {
  if (o->timer_us == 0) return;
  if (g_timer_fired || (left.it_value.tv_sec == 0 && left.it_value.tv_usec == 0)) {
    g_timer_fired = 0;
    arm_timer(o->timer_us);
  } else {
    setitimer(ITIMER_REAL, &left, NULL);
  }
}

/* Finish the exit KVM left pending (I/O in), then save, destroy, create, restore. With `control`
 * (--torture-control) stop after the first step: the same exits at the same points, no save or
 * restore, so a record that changes under torture can be told from one that changes because the
 * guest was interrupted there. */
static int torture_cycle(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, bool control, char *err, size_t errlen) {
  sigset_t block, old;
  sigemptyset(&block);
  sigaddset(&block, SIGALRM);
  sigprocmask(SIG_BLOCK, &block, &old);
  g_run = NULL;
  /* api.rst, KVM_RUN and immediate_exit: re-entering with immediate_exit set completes a pending
   * KVM_EXIT_IO/MMIO without running a further guest instruction, and returns -EINTR */
  vm->run->immediate_exit = 1;
  int r = ioctl(vm->vcpu_fd, KVM_RUN, 0);
  vm->run->immediate_exit = 0;
  int rc = -1;
  if (r == 0 || errno != EINTR) {
    (void)ERRF(err, errlen, "torture: KVM_RUN with immediate_exit did not return EINTR (%s)", r == 0 ? "returned 0" : strerror(errno));
    goto out;
  }
  if (!control) {
    if (state_save(vm, s, st, err, errlen) < 0) goto out;
    vm_destroy(vm);
    if (vm_create(vm, err, errlen) < 0) goto out;
    if (state_restore(vm, s, st, err, errlen) < 0) goto out;
  }
  st->restores++;
  rc = 0;
out:
  if (vm->run) g_run = vm->run;
  sigprocmask(SIG_SETMASK, &old, NULL);
  return rc;
}

/* One torture point: a cycle, counted in *counter. False when it failed (the run then ends). */
static bool torture_point(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, const struct options *o, uint64_t *counter,
                          char *err, size_t errlen) {
  struct itimerval left = pause_timer(o);
  if (torture_cycle(vm, s, st, o->torture_control, err, errlen) < 0) return false;
  (*counter)++;
  /* a signal that landed between the exit and this cycle was consumed by it */
  resume_timer(o, left);
  return true;
}

static int run_kernel(const struct options *o) {
  char err[1024] = "";
  double t0 = now();
  size_t elf_size = 0;
  uint8_t *elf = read_file(o->kernel, &elf_size, err, sizeof err);
  if (!elf) return fail("error", "setup", err, EXIT_ERROR);

  struct vm vm;
  memset(&vm, 0, sizeof vm);
  vm.kvm_fd = vm.vm_fd = vm.vcpu_fd = -1;
  vm.ram_size = (size_t)o->mem_mib * MIB;
  /* the guest's RAM: anonymous, so it reads as zeros; the same mapping serves every VM of a torture run */
  void *ram = mmap(NULL, vm.ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (ram == MAP_FAILED) {
    snprintf(err, sizeof err, "mmap of %u MiB guest RAM: %s", o->mem_mib, strerror(errno));
    return fail("error", "setup", err, EXIT_ERROR);
  }
  vm.ram = ram;
  struct load_info li;
  if (load_multiboot(elf, elf_size, vm.ram, vm.ram_size, o->cmdline, &li, err, sizeof err) < 0) {
    char d[1100];
    snprintf(d, sizeof d, "%s: %s", o->kernel, err);
    return fail("error", "setup", d, EXIT_ERROR);
  }
  free(elf);

  if (o->check) {
    if (o->dump) {
      int fd = open(o->dump, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      size_t len = (size_t)li.highest + 1;
      if (fd < 0 || write(fd, vm.ram, len) != (ssize_t)len) {
        snprintf(err, sizeof err, "cannot write %s: %s", o->dump, strerror(errno));
        return fail("error", "setup", err, EXIT_ERROR);
      }
      close(fd);
    }
    printf("{\"entry\":%u,\"lowest\":%u,\"highest\":%u,\"segments\":%u,\"mbi\":%u,\"mem_lower\":640,\"mem_upper\":%zu,"
           "\"cmdline_addr\":%u,\"gdt\":%u,\"eax\":%u,\"cpuid\":[",
           li.entry, li.lowest, li.highest, li.nsegments, li.mbi, vm.ram_size / 1024 - 1024, MBI_CMDLINE_ADDR, GDT_ADDR, MB_BOOT_MAGIC);
    /* the CPUID table as the helper parsed it, so the runner's text format is checked end to end */
    if (o->cpuid) {
      size_t n = 0;
      char *text = (char *)read_file(o->cpuid, &n, err, sizeof err);
      struct kvm_cpuid_entry2 *e = calloc(CPUID_MAX_ENTRIES, sizeof *e);
      int k = text && e ? cpuid_parse(text, e, CPUID_MAX_ENTRIES, err, sizeof err) : -1;
      free(text);
      if (k < 0) {
        free(e);
        printf("]}\n");
        return fail("error", "setup", err[0] ? err : "out of memory", EXIT_ERROR);
      }
      for (int i = 0; i < k; i++)
        printf("%s[%u,%u,%u,%u,%u,%u,%u]", i ? "," : "", e[i].function, e[i].index, e[i].flags, e[i].eax, e[i].ebx, e[i].ecx, e[i].edx);
      free(e);
    }
    printf("]}\n");
    strcpy(status, "{");
    kv_str("end", "checked");
    return finish(EXIT_OK);
  }

  if (vm_open_kvm(&vm, err, sizeof err) < 0) return fail("error", "no-kvm", err, EXIT_ERROR);
  if (o->cpuid) {
    size_t n = 0;
    char *text = (char *)read_file(o->cpuid, &n, err, sizeof err);
    if (!text) return fail("error", "setup", err, EXIT_ERROR);
    vm.cpuid = calloc(1, sizeof *vm.cpuid + CPUID_MAX_ENTRIES * sizeof vm.cpuid->entries[0]);
    int k = vm.cpuid ? cpuid_parse(text, vm.cpuid->entries, CPUID_MAX_ENTRIES, err, sizeof err) : -1;
    free(text);
    if (k < 0) return fail("error", "setup", vm.cpuid ? err : "out of memory", EXIT_ERROR);
    vm.cpuid->nent = (uint32_t)k;
  } else {
    vm.cpuid = vm_supported_cpuid(vm.kvm_fd, err, sizeof err);
    if (!vm.cpuid) return fail("error", "setup", err, EXIT_ERROR);
  }
  if (vm_create(&vm, err, sizeof err) < 0 || vm_set_entry_state(&vm, &li, err, sizeof err) < 0)
    return fail("error", "setup", err, EXIT_ERROR);

  struct io_state io;
  io_init(&io, 1);
  struct counters k = {0};
  struct torture_stats st;
  memset(&st, 0, sizeof st);
  struct vcpu_state *saved = NULL;
  if (o->torture) {
    if (!vm.caps.immediate_exit) return fail("error", "setup", "--torture needs KVM_CAP_IMMEDIATE_EXIT", EXIT_ERROR);
    saved = state_new(&vm, err, sizeof err);
    if (!saved) return fail("error", "setup", err, EXIT_ERROR);
    if (o->timer_us > 0) {
      struct sigaction sa;
      memset(&sa, 0, sizeof sa);
      sa.sa_handler = on_timer;
      sigemptyset(&sa.sa_mask);
      sa.sa_flags = 0; /* no SA_RESTART: KVM_RUN must come back with EINTR */
      sigaction(SIGALRM, &sa, NULL);
      g_run = vm.run;
      arm_timer(o->timer_us);
    }
  }

  const char *end = NULL, *reason = NULL;
  int code = EXIT_OK;
  strcpy(status, "{");
  for (;;) {
    int r = ioctl(vm.vcpu_fd, KVM_RUN, 0);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) {
      k.intr_exits++;
      if (o->torture && !torture_point(&vm, saved, &st, o, &st.at_timer, err, sizeof err)) {
        end = "crashed", reason = "torture", code = EXIT_CRASHED;
        break;
      }
      continue;
    }
    if (r < 0) {
      snprintf(err, sizeof err, "KVM_RUN: %s", strerror(errno));
      end = "crashed", reason = "kvm-run-failed", code = EXIT_CRASHED;
      break;
    }
    k.exits++;
    struct kvm_run *run = vm.run;
    bool stop = false;
    switch (run->exit_reason) {
      case KVM_EXIT_IO: {
        k.io_exits++;
        uint8_t *data = (uint8_t *)run + run->io.data_offset;
        for (uint32_t i = 0; i < run->io.count; i++) {
          uint8_t *p = data + (size_t)i * run->io.size;
          uint32_t v = 0;
          if (run->io.direction == KVM_EXIT_IO_OUT) memcpy(&v, p, run->io.size);
          io_port(&io, run->io.port, run->io.direction == KVM_EXIT_IO_OUT, run->io.size, &v);
          if (run->io.direction == KVM_EXIT_IO_IN) memcpy(p, &v, run->io.size);
        }
        if (io.end == GUEST_DEBUG_EXIT) {
          end = "exited", reason = "debug-exit", stop = true;
          kv_num("value", io.exit_value);
        } else if (io.end == GUEST_SHUTDOWN_PORT) {
          end = "exited", reason = "shutdown-port", stop = true;
        }
        break;
      }
      case KVM_EXIT_MMIO:
        /* no device lives outside RAM: reads see all ones, writes vanish (as on an empty bus) */
        k.mmio_exits++;
        if (!run->mmio.is_write) memset(run->mmio.data, 0xff, sizeof run->mmio.data);
        break;
      case KVM_EXIT_HLT:
        /* without an in-kernel LAPIC a HLT comes here; interrupts are off, so it halts for good */
        end = "exited", reason = "hlt", stop = true;
        break;
      case KVM_EXIT_SHUTDOWN:
        /* api.rst: the guest triple-faulted (shutdown, APM vol. 2 8.2.9) */
        end = "crashed", reason = "triple-fault", code = EXIT_CRASHED, stop = true;
        break;
      case KVM_EXIT_INTERNAL_ERROR: {
        end = "crashed", reason = "internal-error", code = EXIT_CRASHED, stop = true;
        kv_num("suberror", run->internal.suberror);
        kv_str("suberror_name", suberror_name(run->internal.suberror));
        char d[16 * 20 + 4] = "[";
        for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
          snprintf(d + strlen(d), sizeof d - strlen(d), "%s\"0x%llx\"", i ? "," : "", (unsigned long long)run->internal.data[i]);
        strcat(d, "]");
        kv_raw("data", d);
        break;
      }
      case KVM_EXIT_FAIL_ENTRY:
        end = "crashed", reason = "fail-entry", code = EXIT_CRASHED, stop = true;
        kv_hex("hardware_entry_failure_reason", run->fail_entry.hardware_entry_failure_reason);
        kv_num("cpu", run->fail_entry.cpu);
        break;
      case KVM_EXIT_SYSTEM_EVENT:
        end = "crashed", reason = "system-event", code = EXIT_CRASHED, stop = true;
        kv_num("type", run->system_event.type);
        break;
      case KVM_EXIT_INTR:
        k.intr_exits++;
        break;
      default:
        end = "crashed", reason = "unexpected-exit", code = EXIT_CRASHED, stop = true;
        kv_num("exit_reason", run->exit_reason);
        break;
    }
    if (stop) break;
    if (o->torture && k.exits % o->torture_every == 0 && !torture_point(&vm, saved, &st, o, &st.at_exit, err, sizeof err)) {
      end = "crashed", reason = "torture", code = EXIT_CRASHED;
      break;
    }
  }
  if (o->torture && o->timer_us > 0) {
    /* no more signals: the status line below must not be cut by an EINTR */
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    sigprocmask(SIG_BLOCK, &block, NULL);
    g_run = NULL;
  }
  (void)io_flush(&io);
  kv_str("end", end);
  kv_str("reason", reason);
  if (err[0]) kv_str("detail", err);
  if (vm.vcpu_fd >= 0) add_rip(&vm);
  add_common(&io, &k, o, &st, t0, &vm);
  state_free(saved);
  return finish(code);
}

int main(int argc, char **argv) {
  struct options o = {.cmdline = "", .mem_mib = DEFAULT_RAM_MIB, .timer_us = 0, .torture_every = 1};
  bool probe_mode = false, self = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *next = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--probe")) probe_mode = true;
    else if (!strcmp(a, "--selftest")) self = true;
    else if (!strcmp(a, "--check")) o.check = true;
    else if (!strcmp(a, "--torture")) o.torture = true;
    else if (!strcmp(a, "--torture-control")) o.torture_control = true;
    else if (!strcmp(a, "--kernel") && next) o.kernel = argv[++i];
    else if (!strcmp(a, "--cmdline") && next) o.cmdline = argv[++i];
    else if (!strcmp(a, "--cpuid") && next) o.cpuid = argv[++i];
    else if (!strcmp(a, "--dump") && next) o.dump = argv[++i];
    else if ((!strcmp(a, "--mem-mib") || !strcmp(a, "--torture-timer-us") || !strcmp(a, "--torture-every")) && next) {
      char *endp;
      unsigned long v = strtoul(next, &endp, 10);
      if (*endp || endp == next || v == 0 || v > 4096 * (a[2] == 'm' ? 1ul : 1000000ul)) {
        char m[128];
        snprintf(m, sizeof m, "%s: expected a positive number, got '%s'", a, next);
        return usage(m);
      }
      if (a[2] == 'm') o.mem_mib = (unsigned)v;
      else if (!strcmp(a, "--torture-every")) o.torture_every = (unsigned)v;
      else o.timer_us = (unsigned)v;
      i++;
    } else {
      char m[256];
      snprintf(m, sizeof m, "unknown or incomplete option '%s'", a);
      return usage(m);
    }
  }
  if (self) return selftest();
  if (probe_mode) return probe();
  if (!o.kernel) return usage("--kernel is required");
  if (o.timer_us && !o.torture) return usage("--torture-timer-us needs --torture");
  if (o.torture_every != 1 && !o.torture) return usage("--torture-every needs --torture");
  if (o.torture_control && !o.torture) return usage("--torture-control needs --torture");
  if ((size_t)o.mem_mib * MIB <= LOW_RESERVED_END + MIB) return usage("--mem-mib: too small");
  return run_kernel(&o);
}
