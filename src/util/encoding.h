/* Byte encodings used across the service: base64url (JWT), hex, SHA-256,
 * constant-time comparison, UTF-8 validation. */
#ifndef OMS_ENCODING_H
#define OMS_ENCODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes unpadded base64url (RFC 4648 §5). Rejects padding, whitespace and
 * any non-alphabet byte. `out` must hold (len*3)/4 + 1 bytes. Returns the
 * decoded length or -1. */
long oms_b64url_decode(unsigned char *out, const char *in, size_t len);
/* Encodes without padding; `out` must hold ((len+2)/3)*4 + 1 bytes. */
size_t oms_b64url_encode(char *out, const unsigned char *in, size_t len);

void oms_hex(char *out, const unsigned char *in, size_t len); /* out: 2*len+1 */
/* SHA-256 of data as 64 lowercase hex digits plus NUL. */
void oms_sha256_hex(char out[65], const void *data, size_t len);
void oms_sha256(unsigned char out[32], const void *data, size_t len);

bool oms_ct_equal(const void *a, const void *b, size_t len);
bool oms_utf8_valid(const char *s, size_t len);

#endif
