/*
 * The CPUID table the runner hands in (runner/kvm-cpuid.ts computes it from KVM_GET_SUPPORTED_CPUID
 * and the kernel's cpu config, e.g. NRIPS hidden). Text, one entry per line:
 *   function index flags eax ebx ecx edx      (hex, 0x optional; # starts a comment)
 * flags is struct kvm_cpuid_entry2's (bit 0 KVM_CPUID_FLAG_SIGNIFCANT_INDEX). Pure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm.h"

int cpuid_parse(const char *text, struct kvm_cpuid_entry2 *entries, unsigned max, char *err, size_t errlen) {
  unsigned n = 0, lineno = 0;
  const char *p = text;
  while (*p) {
    lineno++;
    const char *eol = strchr(p, '\n');
    size_t len = eol ? (size_t)(eol - p) : strlen(p);
    char line[256];
    if (len >= sizeof line) return ERRF(err, errlen, "cpuid line %u: too long", lineno);
    memcpy(line, p, len);
    line[len] = 0;
    p += len + (eol ? 1 : 0);
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    uint32_t v[7];
    unsigned k = 0;
    char *s = line;
    for (;;) {
      while (*s == ' ' || *s == '\t' || *s == '\r') s++;
      if (!*s) break;
      if (k == 7) return ERRF(err, errlen, "cpuid line %u: more than 7 fields", lineno);
      char *end;
      errno = 0;
      unsigned long long x = strtoull(s, &end, 16);
      if (end == s || errno != 0 || x > 0xffffffffull || (*end && *end != ' ' && *end != '\t' && *end != '\r'))
        return ERRF(err, errlen, "cpuid line %u: field %u is not a 32-bit hex number", lineno, k + 1);
      v[k++] = (uint32_t)x;
      s = end;
    }
    if (k == 0) continue;
    if (k != 7) return ERRF(err, errlen, "cpuid line %u: %u fields, expected 7 (function index flags eax ebx ecx edx)", lineno, k);
    if (n == max) return ERRF(err, errlen, "cpuid: more than %u entries", max);
    struct kvm_cpuid_entry2 *e = &entries[n++];
    memset(e, 0, sizeof *e);
    e->function = v[0];
    e->index = v[1];
    e->flags = v[2];
    e->eax = v[3];
    e->ebx = v[4];
    e->ecx = v[5];
    e->edx = v[6];
  }
  return (int)n;
}
