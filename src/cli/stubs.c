#include "cli/cli.h"
int oms_cli_cmd_tag(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_lock(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_audit(oms_cli *c, int argc, char **argv) { return 1; }
