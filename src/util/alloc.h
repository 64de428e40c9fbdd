/* The one allocation-failure policy (docs/memory.md): OMS does not try to
 * limp on when the C library cannot give it memory. Every heap allocation
 * goes through these functions (and jansson's, which oms_alloc_init routes
 * here); on failure they log one line and abort, as Redis' zmalloc does.
 * Limits on what a client can make the server allocate (body size, JSON
 * depth, page sizes) are checked before allocating and answered with a
 * problem document; running out of memory past those limits is an
 * operational failure, not a request error, and a supervisor restarts the
 * process (the audit log and the database lose nothing: kill -9 safety).
 *
 * So a pointer these return is never NULL, and callers do not check. */
#ifndef OMS_ALLOC_H
#define OMS_ALLOC_H

#include <stdarg.h>
#include <stddef.h>

void *oms_xmalloc(size_t n);
void *oms_xcalloc(size_t n, size_t size);
void *oms_xrealloc(void *p, size_t n);
char *oms_xstrdup(const char *s);
char *oms_xstrndup(const char *s, size_t n);
/* printf into a new string (free it); never NULL: a formatting error, like
 * running out of memory, aborts. */
char *oms_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *oms_xvasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Routes jansson's allocations through the policy; call once at start-up,
 * before any JSON value exists. */
void oms_alloc_init(void);

#endif
