/* `oms index rebuild` (src/search/cli.c): a client of the public API. */
#ifndef OMS_SEARCH_CLI_H
#define OMS_SEARCH_CLI_H

/* `oms index rebuild --branch B [--wait] [--json]`: the client command
 * (OMS_URL, OMS_TOKEN or OMS_TOKEN_FILE); returns the exit code. */
int oms_index_cli(int argc, char **argv);

#endif
