/*
 * JSON text for the status line main.c prints (pure; selftest.c checks it).
 */
#include <stdio.h>
#include <string.h>

#include "json.h"

void json_string(char *dst, size_t cap, const char *s) {
  size_t n = strlen(dst);
  if (n + 2 >= cap) return;
  dst[n++] = '"';
  for (; *s && n + 8 < cap; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') {
      dst[n++] = '\\';
      dst[n++] = (char)c;
    } else if (c < 0x20 || c >= 0x7f) {
      n += (size_t)snprintf(dst + n, cap - n, "\\u%04x", c);
    } else {
      dst[n++] = (char)c;
    }
  }
  dst[n++] = '"';
  dst[n] = 0;
}
