/* Backup file bytes: plain or one zstd frame (with its content checksum),
 * read and written through fixed buffers. */
#include "backup/stream.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "util/alloc.h"

#define OUT_BUF (128u << 10)
#define IN_BUF (128u << 10)

struct oms_bk_out {
    int fd;
    char *path, *tmp;
    ZSTD_CCtx *z;
    unsigned char *buf; /* compressed output */
    size_t cap;
    int64_t bytes;
};

static int write_all(int fd, const void *data, size_t len, oms_error *err)
{
    const char *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return oms_err_set(err, OMS_EIO, "cannot write the backup file: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
    return OMS_OK;
}

int oms_bk_out_open(oms_bk_out **out, const char *path, int level, oms_error *err)
{
    *out = NULL;
    oms_bk_out *o = oms_xcalloc(1, sizeof *o);
    o->fd = -1;
    size_t n = strlen(path) + 5;
    o->path = oms_xstrdup(path);
    o->tmp = oms_xmalloc(n);
    snprintf(o->tmp, n, "%s.tmp", path);
    if (access(path, F_OK) == 0) {
        free(o->tmp);
        o->tmp = NULL;
        oms_bk_out_close(o, false, err);
        return oms_err_set(err, OMS_ECONFLICT, "%s exists: not overwriting it (remove it or choose another name)",
                           path);
    }
    /* 0600 from the start: the file holds audit details and secrets */
    o->fd = open(o->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (o->fd < 0) {
        int e = errno;
        free(o->tmp);
        o->tmp = NULL; /* not ours: never removed */
        oms_bk_out_close(o, false, err);
        return oms_err_set(err, OMS_EIO, "cannot create %s.tmp: %s", path, strerror(e));
    }
    if (level > 0) {
        o->z = ZSTD_createCCtx();
        o->cap = ZSTD_CStreamOutSize();
        o->buf = oms_xmalloc(o->cap);
        if (!o->z || ZSTD_isError(ZSTD_CCtx_setParameter(o->z, ZSTD_c_compressionLevel, level)) ||
            ZSTD_isError(ZSTD_CCtx_setParameter(o->z, ZSTD_c_checksumFlag, 1))) {
            oms_bk_out_close(o, false, err);
            return oms_err_set(err, OMS_ENOMEM, "cannot set up zstd compression");
        }
    }
    *out = o;
    return OMS_OK;
}

static int compress(oms_bk_out *o, const void *data, size_t len, ZSTD_EndDirective mode, oms_error *err)
{
    ZSTD_inBuffer in = {data, len, 0};
    for (;;) {
        ZSTD_outBuffer zo = {o->buf, o->cap, 0};
        size_t left = ZSTD_compressStream2(o->z, &zo, &in, mode);
        if (ZSTD_isError(left))
            return oms_err_set(err, OMS_EIO, "zstd: %s", ZSTD_getErrorName(left));
        int rc = write_all(o->fd, o->buf, zo.pos, err);
        if (rc)
            return rc;
        o->bytes += (int64_t)zo.pos;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return OMS_OK;
    }
}

int oms_bk_out_write(oms_bk_out *o, const void *data, size_t len, oms_error *err)
{
    if (o->z)
        return compress(o, data, len, ZSTD_e_continue, err);
    int rc = write_all(o->fd, data, len, err);
    if (rc == OMS_OK)
        o->bytes += (int64_t)len;
    return rc;
}

int64_t oms_bk_out_bytes(const oms_bk_out *o) { return o->bytes; }

static void fsync_dir(const char *path)
{
    char *copy = oms_xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int oms_bk_out_close(oms_bk_out *o, bool commit, oms_error *err)
{
    int rc = OMS_OK;
    if (!o)
        return OMS_OK;
    if (commit && o->z)
        rc = compress(o, "", 0, ZSTD_e_end, err);
    if (commit && rc == OMS_OK && fsync(o->fd) != 0)
        rc = oms_err_set(err, OMS_EIO, "cannot sync the backup file: %s", strerror(errno));
    if (o->fd >= 0 && close(o->fd) != 0 && commit && rc == OMS_OK)
        rc = oms_err_set(err, OMS_EIO, "cannot close the backup file: %s", strerror(errno));
    if (commit && rc == OMS_OK && rename(o->tmp, o->path) != 0)
        rc = oms_err_set(err, OMS_EIO, "cannot rename %s to %s: %s", o->tmp, o->path, strerror(errno));
    if (commit && rc == OMS_OK)
        fsync_dir(o->path);
    if ((!commit || rc) && o->tmp)
        unlink(o->tmp);
    ZSTD_freeCCtx(o->z);
    free(o->buf);
    free(o->path);
    free(o->tmp);
    free(o);
    return rc;
}

/* ---- input ---- */

struct oms_bk_in {
    int fd;
    bool zstd, eof, frame_done;
    ZSTD_DCtx *z;
    unsigned char *raw; /* bytes read from the file */
    size_t raw_len, raw_pos;
    char *data; /* decoded bytes (the raw buffer itself when plain) */
    size_t data_len, data_pos;
    char *line; /* the line being assembled */
    size_t line_len, line_cap;
};

int oms_bk_in_open(oms_bk_in **out, const char *path, oms_error *err)
{
    *out = NULL;
    oms_bk_in *in = oms_xcalloc(1, sizeof *in);
    in->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (in->fd < 0) {
        int e = errno;
        free(in);
        return oms_err_set(err, OMS_EIO, "cannot open %s: %s", path, strerror(e));
    }
    in->raw = oms_xmalloc(IN_BUF);
    in->data = oms_xmalloc(ZSTD_DStreamOutSize());
    /* zstd frames start with 28 b5 2f fd */
    unsigned char magic[4];
    ssize_t n = pread(in->fd, magic, 4, 0);
    in->zstd = n == 4 && magic[0] == 0x28 && magic[1] == 0xb5 && magic[2] == 0x2f && magic[3] == 0xfd;
    if (in->zstd && !(in->z = ZSTD_createDCtx())) {
        oms_bk_in_close(in);
        return oms_err_set(err, OMS_ENOMEM, "cannot set up zstd decompression");
    }
    *out = in;
    return OMS_OK;
}

bool oms_bk_in_compressed(const oms_bk_in *in) { return in->zstd; }

static int fill_raw(oms_bk_in *in, oms_error *err)
{
    for (;;) {
        ssize_t n = read(in->fd, in->raw, IN_BUF);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return oms_err_set(err, OMS_EIO, "cannot read the backup file: %s", strerror(errno));
        in->raw_len = (size_t)n;
        in->raw_pos = 0;
        if (n == 0)
            in->eof = true;
        return OMS_OK;
    }
}

/* More decoded bytes into in->data; data_len 0 at the end. */
static int fill(oms_bk_in *in, oms_error *err)
{
    in->data_len = in->data_pos = 0;
    if (!in->zstd) {
        if (in->eof)
            return OMS_OK;
        ssize_t n;
        do
            n = read(in->fd, in->data, ZSTD_DStreamOutSize());
        while (n < 0 && errno == EINTR);
        if (n < 0)
            return oms_err_set(err, OMS_EIO, "cannot read the backup file: %s", strerror(errno));
        in->data_len = (size_t)n;
        in->eof = n == 0;
        return OMS_OK;
    }
    while (in->data_len == 0) {
        if (in->raw_pos == in->raw_len) {
            if (in->eof)
                break;
            int rc = fill_raw(in, err);
            if (rc)
                return rc;
            if (in->eof)
                break;
        }
        if (in->frame_done)
            return oms_err_set(err, OMS_EINVAL, "damaged file: data after the end of the compressed stream");
        ZSTD_inBuffer zi = {in->raw, in->raw_len, in->raw_pos};
        ZSTD_outBuffer zo = {in->data, ZSTD_DStreamOutSize(), 0};
        size_t r = ZSTD_decompressStream(in->z, &zo, &zi);
        if (ZSTD_isError(r))
            return oms_err_set(err, OMS_EINVAL, "damaged file: the compressed stream is corrupt (zstd: %s)",
                               ZSTD_getErrorName(r));
        in->raw_pos = zi.pos;
        in->data_len = zo.pos;
        if (r == 0)
            in->frame_done = true;
    }
    if (in->data_len == 0 && !in->frame_done)
        return oms_err_set(err, OMS_EINVAL, "truncated file: the compressed stream ends early");
    return OMS_OK;
}

int oms_bk_in_line(oms_bk_in *in, const char **line, size_t *len, oms_error *err)
{
    in->line_len = 0;
    for (;;) {
        if (in->data_pos == in->data_len) {
            int rc = fill(in, err);
            if (rc)
                return rc;
            if (in->data_len == 0) {
                *line = in->line;
                *len = in->line_len;
                return 0;
            }
        }
        const char *start = in->data + in->data_pos;
        size_t avail = in->data_len - in->data_pos;
        const char *nl = memchr(start, '\n', avail);
        size_t take = nl ? (size_t)(nl - start) + 1 : avail;
        if (in->line_len + take > OMS_BK_MAX_LINE)
            return oms_err_set(err, OMS_EINVAL, "damaged file: a record is longer than %u MiB",
                               OMS_BK_MAX_LINE >> 20);
        if (in->line_len + take + 1 > in->line_cap) {
            size_t cap = in->line_cap ? in->line_cap : 4096;
            while (cap < in->line_len + take + 1)
                cap *= 2;
            char *p = oms_xrealloc(in->line, cap);
            in->line = p;
            in->line_cap = cap;
        }
        memcpy(in->line + in->line_len, start, take);
        in->line_len += take;
        in->line[in->line_len] = '\0';
        in->data_pos += take;
        if (nl) {
            *line = in->line;
            *len = in->line_len;
            return 1;
        }
    }
}

void oms_bk_in_close(oms_bk_in *in)
{
    if (!in)
        return;
    if (in->fd >= 0)
        close(in->fd);
    ZSTD_freeDCtx(in->z);
    free(in->raw);
    free(in->data);
    free(in->line);
    free(in);
}
