/* util/buf: appends of every size grow the buffer and keep it terminated;
 * take hands over ownership and leaves an empty buffer. */
#include <stdlib.h>
#include <string.h>

#include "t.h"
#include "util/alloc.h"
#include "util/buf.h"

static void empty_buffer_reads_as_empty_string(void)
{
    oms_buf b = OMS_BUF_INIT;
    CHECK_EQ_STR(oms_buf_str(&b), "");
    size_t len = 99;
    char *s = oms_buf_take(&b, &len);
    CHECK_EQ_STR(s, "");
    CHECK_EQ_INT(len, 0);
    free(s);
}

static void appends_grow_and_terminate(void)
{
    oms_buf b = OMS_BUF_INIT;
    char expect[5001];
    for (int i = 0; i < 5000; i++) {
        oms_buf_putc(&b, (char)('a' + i % 26));
        expect[i] = (char)('a' + i % 26);
    }
    expect[5000] = '\0';
    CHECK_EQ_INT(b.len, 5000);
    CHECK_EQ_STR(oms_buf_str(&b), expect);
    oms_buf_reset(&b);
    CHECK_EQ_STR(oms_buf_str(&b), "");
    oms_buf_puts(&b, "x=");
    oms_buf_printf(&b, "%d;%s", 42, "y");
    CHECK_EQ_STR(oms_buf_str(&b), "x=42;y");
    oms_buf_free(&b);
    CHECK(b.data == NULL);
}

static void printf_longer_than_free_space(void)
{
    oms_buf b = OMS_BUF_INIT;
    char big[3000];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    oms_buf_puts(&b, "<");
    oms_buf_printf(&b, "%s>", big);
    CHECK_EQ_INT(b.len, 3001);
    CHECK(b.data[0] == '<' && b.data[3000] == '>' && b.data[3001] == '\0');
    size_t len;
    char *s = oms_buf_take(&b, &len);
    CHECK_EQ_INT(len, 3001);
    CHECK(b.data == NULL && b.len == 0);
    free(s);
}

static void binary_append_keeps_nul_bytes(void)
{
    oms_buf b = OMS_BUF_INIT;
    oms_buf_append(&b, "a\0b", 3);
    CHECK_EQ_INT(b.len, 3);
    CHECK(memcmp(b.data, "a\0b", 4) == 0);
    oms_buf_free(&b);
}

static void x_allocators_never_return_null(void)
{
    char *p = oms_xstrndup("abcdef", 3);
    CHECK_EQ_STR(p, "abc");
    p = oms_xrealloc(p, 1 << 20);
    CHECK(p != NULL);
    free(p);
    void *z = oms_xcalloc(0, 0); /* zero-size requests still give a pointer */
    CHECK(z != NULL);
    free(z);
}

int main(void)
{
    oms_alloc_init();
    static const t_case cases[] = {T(empty_buffer_reads_as_empty_string), T(appends_grow_and_terminate),
                                   T(printf_longer_than_free_space), T(binary_append_keeps_nul_bytes),
                                   T(x_allocators_never_return_null)};
    return T_RUN("buf", cases);
}
