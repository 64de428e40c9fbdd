/* A growable byte buffer, the one used wherever text is built piece by
 * piece (metrics exposition, bulk statement parameters, reports). It
 * allocates under the policy of util/alloc.h, so appending never fails;
 * the contents are always NUL-terminated. */
#ifndef OMS_BUF_H
#define OMS_BUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len, cap;
} oms_buf;

#define OMS_BUF_INIT {NULL, 0, 0}

void oms_buf_append(oms_buf *b, const void *data, size_t n);
void oms_buf_puts(oms_buf *b, const char *s);
void oms_buf_putc(oms_buf *b, char c);
void oms_buf_printf(oms_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void oms_buf_vprintf(oms_buf *b, const char *fmt, va_list ap);
/* Room for n more bytes without a reallocation. */
void oms_buf_reserve(oms_buf *b, size_t n);
/* The contents as a string ("" when empty); the buffer keeps owning it. */
const char *oms_buf_str(const oms_buf *b);
/* Hands the contents to the caller (free with free()); the buffer is empty
 * afterwards. Never NULL. */
char *oms_buf_take(oms_buf *b, size_t *len);
void oms_buf_reset(oms_buf *b);
void oms_buf_free(oms_buf *b);

#endif
