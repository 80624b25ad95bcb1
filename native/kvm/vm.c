/*
 * VM and vCPU over /dev/kvm (Linux Documentation/virt/kvm/api.rst): one memory slot of guest RAM at
 * physical 0, one vCPU with the runner's CPUID, an in-kernel local APIC when KVM offers the split
 * irqchip (so LAPIC state exists and is saved by --torture; PIC and IOAPIC are not needed: the
 * kernels run with interrupts off), and the multiboot entry state.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm.h"

/* An address above RAM for the three pages Intel VMX needs for real-mode emulation (KVM_SET_TSS_ADDR,
 * api.rst: "must be set on Intel hosts"); unused on AMD. */
#define TSS_ADDR 0xfffbd000ul
/* IOAPIC pins KVM routes for the split irqchip (api.rst KVM_CAP_SPLIT_IRQCHIP: args[0] = the number
 * of routes reserved for the userspace IOAPIC); 24 as a PC's IOAPIC has. */
#define SPLIT_IRQCHIP_ROUTES 24

int vm_open_kvm(struct vm *vm, char *err, size_t errlen) {
  vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
  if (vm->kvm_fd < 0) {
    int e = errno;
    return ERRF(err, errlen, "cannot open /dev/kvm: %s", strerror(e));
  }
  vm->caps.api_version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
  if (vm->caps.api_version != KVM_API_VERSION)
    return ERRF(err, errlen, "KVM API version %d, expected %d", vm->caps.api_version, KVM_API_VERSION);
  vm->caps.vcpu_mmap_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
  if (vm->caps.vcpu_mmap_size < (int)sizeof(struct kvm_run))
    return ERRF(err, errlen, "KVM_GET_VCPU_MMAP_SIZE gave %d", vm->caps.vcpu_mmap_size);
  return 0;
}

static int cap(int fd, long c) {
  int r = ioctl(fd, KVM_CHECK_EXTENSION, c);
  return r < 0 ? 0 : r;
}

/* fd: a VM fd (some answers, e.g. KVM_CAP_XSAVE2, are per VM); the system fd works for the rest */
void vm_read_caps(int fd, struct caps *c) {
  c->nested_state_size = cap(fd, KVM_CAP_NESTED_STATE);
  c->xsave2_size = cap(fd, KVM_CAP_XSAVE2);
  c->xsave = cap(fd, KVM_CAP_XSAVE) > 0;
  c->xcrs = cap(fd, KVM_CAP_XCRS) > 0;
  c->sregs2 = cap(fd, KVM_CAP_SREGS2) > 0;
  c->split_irqchip = cap(fd, KVM_CAP_SPLIT_IRQCHIP) > 0;
  c->exception_payload = cap(fd, KVM_CAP_EXCEPTION_PAYLOAD) > 0;
  c->immediate_exit = cap(fd, KVM_CAP_IMMEDIATE_EXIT) > 0;
  c->debugregs = cap(fd, KVM_CAP_DEBUGREGS) > 0;
  c->vcpu_events = cap(fd, KVM_CAP_VCPU_EVENTS) > 0;
  c->tss_addr = cap(fd, KVM_CAP_SET_TSS_ADDR) > 0;
}

static int enable_cap(int vm_fd, uint32_t c, uint64_t arg0) {
  struct kvm_enable_cap ec;
  memset(&ec, 0, sizeof ec);
  ec.cap = c;
  ec.args[0] = arg0;
  return ioctl(vm_fd, KVM_ENABLE_CAP, &ec);
}

int vm_create(struct vm *vm, char *err, size_t errlen) {
  vm->vm_fd = vm->vcpu_fd = -1;
  vm->run = NULL;
  vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
  if (vm->vm_fd < 0) return ERRF(err, errlen, "KVM_CREATE_VM: %s", strerror(errno));
  int mmap_size = vm->caps.vcpu_mmap_size;
  vm_read_caps(vm->vm_fd, &vm->caps);
  vm->caps.vcpu_mmap_size = mmap_size;
  /* only VMX's real-mode emulation uses these pages, and the guest never runs in real mode: a KVM
   * that refuses the call loses nothing this runner needs, so the answer is not checked */
  if (vm->caps.tss_addr) (void)ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, TSS_ADDR);
  /* VM capabilities go before the vCPU exists (api.rst: split irqchip "must be enabled before
   * vCPUs are created"). Exception payloads keep a pending #PF's CR2 and #DB's DR6 apart from the
   * registers until delivery, so a save taken between an exception and its delivery is exact. */
  vm->irqchip = vm->caps.split_irqchip && enable_cap(vm->vm_fd, KVM_CAP_SPLIT_IRQCHIP, SPLIT_IRQCHIP_ROUTES) == 0;
  if (vm->caps.exception_payload && enable_cap(vm->vm_fd, KVM_CAP_EXCEPTION_PAYLOAD, 1) < 0)
    return ERRF(err, errlen, "KVM_ENABLE_CAP(EXCEPTION_PAYLOAD): %s", strerror(errno));

  struct kvm_userspace_memory_region region = {
      .slot = 0, .flags = 0, .guest_phys_addr = 0, .memory_size = vm->ram_size, .userspace_addr = (uint64_t)(uintptr_t)vm->ram};
  if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region) < 0)
    return ERRF(err, errlen, "KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));

  vm->vcpu_fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, 0);
  if (vm->vcpu_fd < 0) return ERRF(err, errlen, "KVM_CREATE_VCPU: %s", strerror(errno));
  void *run = mmap(NULL, (size_t)vm->caps.vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu_fd, 0);
  if (run == MAP_FAILED) return ERRF(err, errlen, "mmap of the vCPU's kvm_run: %s", strerror(errno));
  vm->run = run;
  /* CPUID before anything else of the vCPU: KVM derives the guest's MSRs, XSAVE size and nested
   * SVM features (NRIPS, NPT) from it, and refuses a change after the first KVM_RUN */
  if (ioctl(vm->vcpu_fd, KVM_SET_CPUID2, vm->cpuid) < 0) return ERRF(err, errlen, "KVM_SET_CPUID2: %s", strerror(errno));
  return 0;
}

void vm_destroy(struct vm *vm) {
  /* the kvm_run mapping holds a reference on the vCPU file, and the vCPU one on the VM: unmap and
   * close both, or the old VM would live on beside the new one */
  if (vm->run) munmap(vm->run, (size_t)vm->caps.vcpu_mmap_size);
  if (vm->vcpu_fd >= 0) close(vm->vcpu_fd);
  if (vm->vm_fd >= 0) close(vm->vm_fd);
  vm->run = NULL;
  vm->vcpu_fd = vm->vm_fd = -1;
}

static void flat(struct kvm_segment *s, uint16_t sel, uint8_t type) {
  memset(s, 0, sizeof *s);
  s->base = 0;
  s->limit = 0xffffffff;
  s->selector = sel;
  s->type = type;
  s->present = 1;
  s->dpl = 0;
  s->db = 1;
  s->s = 1;
  s->l = 0;
  s->g = 1;
}

int vm_set_entry_state(struct vm *vm, const struct load_info *li, char *err, size_t errlen) {
  struct kvm_sregs sr;
  if (ioctl(vm->vcpu_fd, KVM_GET_SREGS, &sr) < 0) return ERRF(err, errlen, "KVM_GET_SREGS: %s", strerror(errno));
  /* Multiboot 0.6.96 3.2: CS a 32-bit read/execute code segment, offset 0, limit 0xFFFFFFFF; DS, ES,
   * FS, GS, SS 32-bit read/write data segments, same base and limit; CR0.PG clear, CR0.PE set;
   * EFLAGS.VM and IF clear. Types are the descriptors' in loader.c (0xB, 0x3: accessed). */
  flat(&sr.cs, SEL_CODE32, 0xb);
  flat(&sr.ds, SEL_DATA32, 0x3);
  sr.es = sr.fs = sr.gs = sr.ss = sr.ds;
  /* TR and LDTR keep KVM's reset values (a busy TSS and an LDT, both present), which every
   * vendor's entry checks accept; the kernel loads its own TR in long mode */
  sr.gdt.base = GDT_ADDR;
  sr.gdt.limit = 3 * 8 - 1;
  sr.idt.base = 0;
  sr.idt.limit = 0; /* undefined by multiboot; the kernel loads its IDT before enabling anything */
  sr.cr0 = 0x11; /* PE, ET */
  sr.cr2 = sr.cr3 = sr.cr4 = 0;
  sr.efer = 0;
  if (ioctl(vm->vcpu_fd, KVM_SET_SREGS, &sr) < 0) return ERRF(err, errlen, "KVM_SET_SREGS: %s", strerror(errno));

  struct kvm_regs r;
  memset(&r, 0, sizeof r);
  r.rax = MB_BOOT_MAGIC;
  r.rbx = li->mbi;
  r.rip = li->entry;
  r.rflags = 0x2; /* bit 1 is always set (APM vol. 2 3.1.6) */
  if (ioctl(vm->vcpu_fd, KVM_SET_REGS, &r) < 0) return ERRF(err, errlen, "KVM_SET_REGS: %s", strerror(errno));
  return 0;
}

struct kvm_cpuid2 *vm_supported_cpuid(int kvm_fd, char *err, size_t errlen) {
  /* api.rst KVM_GET_SUPPORTED_CPUID: E2BIG when nent is too small; grow and retry */
  for (unsigned n = 64; n <= 4096; n *= 2) {
    struct kvm_cpuid2 *c = calloc(1, sizeof *c + n * sizeof c->entries[0]);
    if (!c) {
      (void)ERRF(err, errlen, "out of memory");
      return NULL;
    }
    c->nent = n;
    if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) return c;
    int e = errno;
    free(c);
    if (e != E2BIG) {
      (void)ERRF(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
      return NULL;
    }
  }
  (void)ERRF(err, errlen, "KVM_GET_SUPPORTED_CPUID: more than 4096 entries");
  return NULL;
}
