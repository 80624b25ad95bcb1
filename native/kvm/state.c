/*
 * The whole vCPU, saved and restored across a VM destroyed and created again (--torture): what a
 * live migration moves. Guest memory stays in the same mapping and is registered with the new VM.
 *
 * Saved: general registers, special registers (KVM_GET_SREGS2 with the PDPTRs when KVM has it),
 * FPU/SSE/AVX state (KVM_GET_XSAVE2 at the size KVM_CAP_XSAVE2 gives, else KVM_GET_XSAVE, else
 * KVM_GET_FPU), XCR0, every MSR of KVM_GET_MSR_INDEX_LIST that KVM lets the host read, the local
 * APIC and the MP state (with the in-kernel LAPIC), the pending and injected events
 * (KVM_GET_VCPU_EVENTS), the debug registers, and the nested SVM state (KVM_GET_NESTED_STATE: L1's
 * saved host state, the VMCB of L2, guest mode, GIF) when KVM_CAP_NESTED_STATE is there.
 *
 * Restored in the order QEMU's kvm_arch_put_registers uses, which is what migrations of nested
 * guests are tested with: CPUID (vm.c, at vCPU creation), special registers first (EFER.SVME must be
 * set before the nested state, or KVM refuses guest mode), nested state, general registers,
 * XSAVE, XCRs, MSRs (after the nested state: in guest mode they are L2's, as when they were read),
 * events, MP state, LAPIC, debug registers.
 *
 * Before a save the caller completes any I/O KVM left pending (main.c, immediate_exit): api.rst
 * says the state of an unfinished KVM_EXIT_IO/MMIO is not visible to user space.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vmm.h"

/* the MSR index list is bounded by KVM; a few hundred on current kernels */
#define MSR_LIST_MAX 1024u

struct vcpu_state {
  struct kvm_regs regs;
  struct kvm_sregs sregs;
  struct kvm_sregs2 sregs2;
  struct kvm_fpu fpu;
  struct kvm_xsave *xsave;
  size_t xsave_size;
  struct kvm_xcrs xcrs;
  struct kvm_msrs *msrs; /* index list filtered to the readable ones, with the values */
  unsigned nmsrs;
  bool msrs_ready;
  struct kvm_lapic_state lapic;
  struct kvm_mp_state mp;
  struct kvm_vcpu_events events;
  struct kvm_debugregs dregs;
  struct kvm_nested_state *nested;
  size_t nested_size;
};

struct vcpu_state *state_new(struct vm *vm, char *err, size_t errlen) {
  struct vcpu_state *s = calloc(1, sizeof *s);
  if (!s) goto oom;
  if (vm->caps.xsave) {
    s->xsave_size = vm->caps.xsave2_size > (int)sizeof(struct kvm_xsave) ? (size_t)vm->caps.xsave2_size : sizeof(struct kvm_xsave);
    s->xsave = calloc(1, s->xsave_size);
    if (!s->xsave) goto oom;
  }
  if (vm->caps.nested_state_size > 0) {
    s->nested_size = (size_t)vm->caps.nested_state_size;
    if (s->nested_size < sizeof(struct kvm_nested_state)) s->nested_size = sizeof(struct kvm_nested_state);
    s->nested = calloc(1, s->nested_size);
    if (!s->nested) goto oom;
  }
  s->msrs = calloc(1, sizeof *s->msrs + MSR_LIST_MAX * sizeof s->msrs->entries[0]);
  if (!s->msrs) goto oom;
  return s;
oom:
  state_free(s);
  (void)ERRF(err, errlen, "out of memory for the vCPU state");
  return NULL;
}

void state_free(struct vcpu_state *s) {
  if (!s) return;
  free(s->xsave);
  free(s->nested);
  free(s->msrs);
  free(s);
}

/* Once per run: KVM_GET_MSR_INDEX_LIST, then drop every MSR KVM_GET_MSRS refuses. KVM_GET_MSRS
 * returns how many entries it read and stops at the first it cannot (api.rst), so each refusal
 * removes that entry and the read is tried again. */
static int msr_list(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen) {
  struct kvm_msr_list *list = calloc(1, sizeof *list + MSR_LIST_MAX * sizeof list->indices[0]);
  if (!list) return ERRF(err, errlen, "out of memory");
  list->nmsrs = MSR_LIST_MAX;
  if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
    int e = errno;
    free(list);
    return ERRF(err, errlen, "KVM_GET_MSR_INDEX_LIST: %s", strerror(e));
  }
  s->nmsrs = list->nmsrs;
  for (unsigned i = 0; i < s->nmsrs; i++) {
    s->msrs->entries[i].index = list->indices[i];
    s->msrs->entries[i].reserved = 0;
  }
  free(list);
  for (;;) {
    s->msrs->nmsrs = s->nmsrs;
    int r = ioctl(vm->vcpu_fd, KVM_GET_MSRS, s->msrs);
    if (r < 0) return ERRF(err, errlen, "KVM_GET_MSRS: %s", strerror(errno));
    if ((unsigned)r >= s->nmsrs) break;
    memmove(&s->msrs->entries[r], &s->msrs->entries[r + 1], (s->nmsrs - (unsigned)r - 1) * sizeof s->msrs->entries[0]);
    s->nmsrs--;
    st->msrs_unreadable++;
  }
  st->msrs_saved = s->nmsrs;
  s->msrs_ready = true;
  return 0;
}

#define GET(req, arg, what)                                                               \
  do {                                                                                    \
    if (ioctl(vm->vcpu_fd, (req), (arg)) < 0) return ERRF(err, errlen, "save: %s: %s", (what), strerror(errno)); \
  } while (0)
#define SET(req, arg, what)                                                               \
  do {                                                                                    \
    if (ioctl(vm->vcpu_fd, (req), (arg)) < 0) return ERRF(err, errlen, "restore: %s: %s", (what), strerror(errno)); \
  } while (0)

int state_save(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen) {
  GET(KVM_GET_REGS, &s->regs, "KVM_GET_REGS");
  if (vm->caps.sregs2) GET(KVM_GET_SREGS2, &s->sregs2, "KVM_GET_SREGS2");
  else GET(KVM_GET_SREGS, &s->sregs, "KVM_GET_SREGS");
  if (s->xsave) {
    if (vm->caps.xsave2_size > 0) GET(KVM_GET_XSAVE2, s->xsave, "KVM_GET_XSAVE2");
    else GET(KVM_GET_XSAVE, s->xsave, "KVM_GET_XSAVE");
  } else {
    GET(KVM_GET_FPU, &s->fpu, "KVM_GET_FPU");
  }
  if (vm->caps.xcrs) GET(KVM_GET_XCRS, &s->xcrs, "KVM_GET_XCRS");
  if (!s->msrs_ready) {
    if (msr_list(vm, s, st, err, errlen) < 0) return -1;
  } else {
    s->msrs->nmsrs = s->nmsrs;
    int r = ioctl(vm->vcpu_fd, KVM_GET_MSRS, s->msrs);
    if (r < 0 || (unsigned)r != s->nmsrs)
      return ERRF(err, errlen, "save: KVM_GET_MSRS read %d of %u MSRs (MSR 0x%x)", r, s->nmsrs,
                  r >= 0 && (unsigned)r < s->nmsrs ? s->msrs->entries[r].index : 0);
  }
  if (vm->irqchip) {
    GET(KVM_GET_LAPIC, &s->lapic, "KVM_GET_LAPIC");
    GET(KVM_GET_MP_STATE, &s->mp, "KVM_GET_MP_STATE");
  }
  if (vm->caps.vcpu_events) GET(KVM_GET_VCPU_EVENTS, &s->events, "KVM_GET_VCPU_EVENTS");
  if (vm->caps.debugregs) GET(KVM_GET_DEBUGREGS, &s->dregs, "KVM_GET_DEBUGREGS");
  if (s->nested) {
    memset(s->nested, 0, s->nested_size);
    s->nested->size = (uint32_t)s->nested_size;
    GET(KVM_GET_NESTED_STATE, s->nested, "KVM_GET_NESTED_STATE");
    st->nested_bytes = s->nested->size;
    st->nested_flags = s->nested->flags;
    if (s->nested->flags & KVM_STATE_NESTED_GUEST_MODE) st->saw_guest_mode = true;
  }
  return 0;
}

/* KVM_SET_MSRS, leaving out (and reporting) any MSR the host may read but not write back */
static int set_msrs(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen) {
  unsigned from = 0;
  while (from < s->nmsrs) {
    struct kvm_msrs *m = s->msrs;
    /* set the tail [from, n): shift a header in front of it without copying the entries */
    struct {
      struct kvm_msrs h;
      struct kvm_msr_entry e[MSR_LIST_MAX];
    } buf;
    buf.h.nmsrs = s->nmsrs - from;
    buf.h.pad = 0;
    memcpy(buf.e, &m->entries[from], buf.h.nmsrs * sizeof buf.e[0]);
    int r = ioctl(vm->vcpu_fd, KVM_SET_MSRS, &buf);
    if (r < 0) return ERRF(err, errlen, "restore: KVM_SET_MSRS: %s", strerror(errno));
    if ((unsigned)r == buf.h.nmsrs) break;
    unsigned bad = from + (unsigned)r;
    if (st->msrs_unwritable < sizeof st->unwritable / sizeof st->unwritable[0]) st->unwritable[st->msrs_unwritable] = m->entries[bad].index;
    st->msrs_unwritable++;
    memmove(&m->entries[bad], &m->entries[bad + 1], (s->nmsrs - bad - 1) * sizeof m->entries[0]);
    s->nmsrs--;
    st->msrs_saved = s->nmsrs;
    from = bad;
  }
  return 0;
}

int state_restore(struct vm *vm, struct vcpu_state *s, struct torture_stats *st, char *err, size_t errlen) {
  if (vm->caps.sregs2) SET(KVM_SET_SREGS2, &s->sregs2, "KVM_SET_SREGS2");
  else SET(KVM_SET_SREGS, &s->sregs, "KVM_SET_SREGS");
  if (s->nested) SET(KVM_SET_NESTED_STATE, s->nested, "KVM_SET_NESTED_STATE");
  SET(KVM_SET_REGS, &s->regs, "KVM_SET_REGS");
  if (s->xsave) SET(KVM_SET_XSAVE, s->xsave, "KVM_SET_XSAVE");
  else SET(KVM_SET_FPU, &s->fpu, "KVM_SET_FPU");
  if (vm->caps.xcrs) SET(KVM_SET_XCRS, &s->xcrs, "KVM_SET_XCRS");
  if (set_msrs(vm, s, st, err, errlen) < 0) return -1;
  if (vm->caps.vcpu_events) SET(KVM_SET_VCPU_EVENTS, &s->events, "KVM_SET_VCPU_EVENTS");
  if (vm->irqchip) {
    SET(KVM_SET_MP_STATE, &s->mp, "KVM_SET_MP_STATE");
    SET(KVM_SET_LAPIC, &s->lapic, "KVM_SET_LAPIC");
  }
  if (vm->caps.debugregs) SET(KVM_SET_DEBUGREGS, &s->dregs, "KVM_SET_DEBUGREGS");
  return 0;
}
