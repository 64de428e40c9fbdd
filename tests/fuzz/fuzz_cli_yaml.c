/* libFuzzer target for the client's resource files (`oms apply`): any
 * bytes as a YAML file. Whatever parses must write back (oms export's
 * writer) to YAML that parses to the same value, byte-identical when
 * written again; line lookups never fail on any pointer. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = NULL, *back = NULL;
    oms_cli_lines *lines = NULL;
    char msg[512], *y = NULL, *y2 = NULL;
    if (oms_cli_yaml_parse(&v, &lines, "fuzz.yaml", (const char *)data, size, msg, sizeof msg))
        return 0;
    oms_cli_lines_find(lines, "/a/0/b");
    oms_cli_lines_find(lines, "");
    if (!(y = oms_cli_yaml_dump(v)))
        abort();
    if (oms_cli_yaml_parse(&back, NULL, "again.yaml", y, strlen(y), msg, sizeof msg) || !json_equal(v, back))
        abort();
    if (!(y2 = oms_cli_yaml_dump(back)) || strcmp(y, y2))
        abort();
    free(y);
    free(y2);
    json_decref(v);
    json_decref(back);
    oms_cli_lines_free(lines);
    return 0;
}
