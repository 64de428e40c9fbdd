#include "cli/cli.h"
int oms_cli_cmd_export(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_apply(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_diff(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_propose(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_review(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_merge(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_tag(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_lock(oms_cli *c, int argc, char **argv) { return 1; }
int oms_cli_cmd_audit(oms_cli *c, int argc, char **argv) { return 1; }
