/*
 * JSON text helpers (json.c): used by main.c for its status line and checked by selftest.c.
 */
#ifndef SVMCONF_KVM_JSON_H
#define SVMCONF_KVM_JSON_H

#include <stddef.h>

/* Append s to a JSON document (dst, NUL-terminated, cap bytes) as a quoted string. */
void json_string(char *dst, size_t cap, const char *s);

#endif
