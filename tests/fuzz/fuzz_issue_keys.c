/* libFuzzer target for issue references (SPEC §6.3): any bytes as a commit
 * message. Every key found must be a valid key on its own, found once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "governance/issue_refs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    json_t *keys = json_array();
    oms_issue_keys_scan(text, keys);
    size_t i, j;
    json_t *k, *l;
    json_array_foreach(keys, i, k) {
        if (!oms_issue_key_valid(json_string_value(k)))
            abort();
        json_array_foreach(keys, j, l) {
            if (j != i && json_equal(k, l))
                abort();
        }
    }
    json_decref(keys);
    free(text);
    return 0;
}
