#include "util/canonical.h"

#include <stdlib.h>
#include <string.h>

#include "util/encoding.h"

char *oms_canonical_dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

int oms_canonical_hash(const json_t *v, char out_hash[65], char **text)
{
    char *s = oms_canonical_dump(v);
    if (!s)
        return -1;
    oms_sha256_hex(out_hash, s, strlen(s));
    if (text)
        *text = s;
    else
        free(s);
    return 0;
}
