/* main.c - metastore-snapshot: option parsing of save, status, verify,
 * export and restore (the work is in store/snaptool.h). */
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/fetch.h"
#include "store/snaptool.h"
#include "util/error.h"

#define PROG "metastore-snapshot"

static const char usage[] =
    "usage: metastore-snapshot <command> [options]\n"
    "\n"
    "Save a snapshot from a live metastore server, inspect, verify or export\n"
    "a snapshot file, or restore one into a new data directory.\n"
    "\n"
    "commands:\n"
    "  save --endpoint URL FILE      download a server's snapshot to FILE\n"
    "  status [--json] FILE          what a snapshot holds\n"
    "  verify FILE                   check a snapshot (exit 1 if corrupt)\n"
    "  export [--prefix P] FILE      live keys as JSON lines on stdout\n"
    "  restore FILE --data-dir DIR --name NAME --initial-cluster LIST\n"
    "                                a data directory for a new cluster\n"
    "\n"
    "Run 'metastore-snapshot <command> --help' for a command's options.\n"
    "Exit status: 0 success, 1 runtime error or corrupt snapshot, 2 usage\n"
    "error. See metastore-snapshot(1).\n";

static const char usage_save[] =
    "usage: metastore-snapshot save --endpoint URL [--timeout SEC] FILE\n"
    "\n"
    "Streams GET URL/admin/snapshot into a temp file beside FILE, verifying\n"
    "it as it arrives, then fsyncs and renames it to FILE. FILE is never\n"
    "left partial: on any error the temp file is removed and FILE is\n"
    "untouched.\n"
    "\n"
    "  --endpoint URL    client URL of a server (http://127.0.0.1:2379)\n"
    "  --timeout SEC     give up when connecting or a read waits longer\n"
    "                    (default 30)\n"
    "  -h, --help        print this help\n"
    "\n"
    "Exit status: 0 saved, 1 download or file error or corrupt stream,\n"
    "2 usage error.\n";

static const char usage_status[] =
    "usage: metastore-snapshot status [--json | -w json|table] FILE\n"
    "\n"
    "Verifies FILE and shows its format version, codec, revision,\n"
    "compacted revision, applied index, keys, versions, leases, size and\n"
    "checksum.\n"
    "\n"
    "  --json            one JSON object instead of the table\n"
    "  -w, --write-out F table (default) or json\n"
    "  -h, --help        print this help\n"
    "\n"
    "Exit status: 0 valid, 1 unreadable or corrupt (message names the byte\n"
    "offset), 2 usage error.\n";

static const char usage_verify[] =
    "usage: metastore-snapshot verify FILE\n"
    "\n"
    "Reads FILE and checks its header, the order and ranges of every\n"
    "record, the record count and the checksum.\n"
    "\n"
    "  -q, --quiet       print nothing on success\n"
    "  -h, --help        print this help\n"
    "\n"
    "Exit status: 0 valid, 1 unreadable or corrupt (message names the byte\n"
    "offset and what is wrong), 2 usage error.\n";

static const char usage_export[] =
    "usage: metastore-snapshot export [--prefix P] FILE\n"
    "\n"
    "Writes every live key of FILE to stdout, in key order, one JSON object\n"
    "per line: {\"key\":B64,\"value\":B64,\"create_revision\":N,\n"
    "\"mod_revision\":N,\"version\":N,\"lease\":N} (key and value base64).\n"
    "FILE is verified first: a corrupt file writes nothing.\n"
    "\n"
    "  --prefix P        only keys that start with P\n"
    "  -h, --help        print this help\n"
    "\n"
    "Exit status: 0 exported, 1 unreadable or corrupt file or write error,\n"
    "2 usage error.\n";

static const char usage_restore[] =
    "usage: metastore-snapshot restore FILE --data-dir DIR --name NAME\n"
    "                                 --initial-cluster NAME=URL,...\n"
    "\n"
    "Creates DIR (which must not exist or be empty) holding restore.snap,\n"
    "FILE with its applied index reset to 0 and no member table, and\n"
    "restore.json naming the member and cluster. metastore-server started\n"
    "on DIR with the same --name and --initial-cluster loads restore.snap\n"
    "before it bootstraps Raft. Restore the same FILE once per member.\n"
    "\n"
    "  --data-dir DIR          the new member's data directory\n"
    "  --name NAME             the new member's name (in the cluster list)\n"
    "  --initial-cluster LIST  name=http://host:peerport,... of the new\n"
    "                          cluster\n"
    "  -h, --help              print this help\n"
    "\n"
    "Exit status: 0 restored, 1 DIR not empty, unreadable or corrupt FILE\n"
    "or write error (nothing is left behind), 2 usage error.\n";

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int usage_error(const char *cmd, const char *fmt, const char *arg)
{
    fprintf(stderr, PROG " %s: ", cmd);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nRun '" PROG " %s --help' for usage.\n", cmd);
    return 2;
}

static int fail(const char *cmd, const char *file, const char *errmsg)
{
    fprintf(stderr, PROG " %s %s: %s\n", cmd, file, errmsg);
    return 1;
}

/* Parses a subcommand's options; returns the one FILE operand in *file, or
 * an exit code (0 after --help, 2 on a usage error) when *file is NULL. */
static int parse(int argc, char **argv, const char *cmd, const char *help,
                 const char *shortopts, const struct option *longopts,
                 int (*opt)(int c, const char *arg, void *u), void *u,
                 const char **file)
{
    int c;

    *file = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (c == '?' || c == ':')
            return usage_error(cmd, "bad option or missing value: '%s'",
                               argv[optind - 1]);
        int rc = opt(c, optarg, u);
        if (rc != 0)
            return rc;
    }
    if (optind >= argc)
        return usage_error(cmd, "%sFILE missing", "");
    if (optind + 1 < argc)
        return usage_error(cmd, "unexpected argument '%s'", argv[optind + 1]);
    *file = argv[optind];
    return 0;
}

/* --- save ----------------------------------------------------------------- */

struct save_opts {
    const char *endpoint;
    unsigned timeout_s;
};

static int save_opt(int c, const char *arg, void *u)
{
    struct save_opts *o = u;
    char *end;
    unsigned long v;

    switch (c) {
    case 'e':
        o->endpoint = arg;
        return 0;
    case 't':
        v = strtoul(arg, &end, 10);
        if (*arg < '0' || *arg > '9' || *end != '\0' || v == 0 || v > 86400)
            return usage_error("save",
                               "--timeout: want 1..86400 seconds, "
                               "got '%s'",
                               arg);
        o->timeout_s = (unsigned)v;
        return 0;
    }
    return 2;
}

static int cmd_save(int argc, char **argv)
{
    static const struct option lo[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct save_opts o = {.timeout_s = 30};
    struct ms_http_url url;
    struct ms_http_fetch *f = NULL;
    struct ms_snapshot_info info;
    struct sigaction sa;
    char err[MS_ERRMSG_SIZE];
    const char *file;
    int rc;

    rc = parse(argc, argv, "save", usage_save, ":h", lo, save_opt, &o, &file);
    if (file == NULL)
        return rc;
    if (o.endpoint == NULL)
        return usage_error("save", "%s--endpoint URL missing", "");
    if (ms_http_url_parse(o.endpoint, &url, err, sizeof(err)) != 0)
        return usage_error("save", "--endpoint: %s", err);

    /* SIGINT/SIGTERM end a wait (no SA_RESTART), so the temp file goes */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct ms_http_fetch_options fo = {.timeout_ms = o.timeout_s * 1000,
                                       .cancel = &interrupted};
    rc = ms_http_fetch_open(o.endpoint, "/admin/snapshot", &fo, &f, err,
                            sizeof(err));
    if (rc != 0)
        return fail("save", file, err);
    rc = ms_snaptool_save(ms_http_fetch_read, f, ms_http_fetch_errmsg(f), file,
                          &info, err, sizeof(err));
    ms_http_fetch_close(f);
    if (rc != 0)
        return fail("save", file, err);
    printf("saved %s: revision %lld, %llu keys, %llu bytes, checksum %08x\n",
           file, (long long)info.header.revision,
           (unsigned long long)info.live_keys, (unsigned long long)info.bytes,
           info.crc);
    return 0;
}

/* --- status --------------------------------------------------------------- */

static int status_opt(int c, const char *arg, void *u)
{
    bool *json = u;

    if (c == 'j') {
        *json = true;
        return 0;
    }
    if (c == 'w' && (strcmp(arg, "json") == 0 || strcmp(arg, "table") == 0)) {
        *json = strcmp(arg, "json") == 0;
        return 0;
    }
    return usage_error("status", "-w: want json or table, got '%s'", arg);
}

static int cmd_status(int argc, char **argv)
{
    static const struct option lo[] = {
        {"json", no_argument, NULL, 'j'},
        {"write-out", required_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct ms_snapshot_info info;
    struct ms_buf out = MS_BUF_INIT;
    char err[MS_ERRMSG_SIZE];
    const char *file;
    bool json = false;
    int rc;

    rc = parse(argc, argv, "status", usage_status, ":hw:", lo, status_opt,
               &json, &file);
    if (file == NULL)
        return rc;
    if (ms_snaptool_verify_file(file, &info, err, sizeof(err)) != 0)
        return fail("status", file, err);
    if (ms_snaptool_format_status(&info, json, &out) != 0) {
        ms_buf_free(&out);
        return fail("status", file, "out of memory");
    }
    fwrite(out.data, 1, out.len, stdout);
    ms_buf_free(&out);
    return fflush(stdout) == 0 ? 0 : fail("status", file, "write stdout");
}

/* --- verify --------------------------------------------------------------- */

static int verify_opt(int c, const char *arg, void *u)
{
    (void)arg;
    if (c == 'q') {
        *(bool *)u = true;
        return 0;
    }
    return 2;
}

static int cmd_verify(int argc, char **argv)
{
    static const struct option lo[] = {{"quiet", no_argument, NULL, 'q'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    struct ms_snapshot_info info;
    char err[MS_ERRMSG_SIZE];
    const char *file;
    bool quiet = false;
    int rc;

    rc = parse(argc, argv, "verify", usage_verify, ":hq", lo, verify_opt,
               &quiet, &file);
    if (file == NULL)
        return rc;
    if (ms_snaptool_verify_file(file, &info, err, sizeof(err)) != 0)
        return fail("verify", file, err);
    if (!quiet)
        printf("%s: OK: revision %lld, %llu records, %llu bytes, checksum "
               "%08x\n",
               file, (long long)info.header.revision,
               (unsigned long long)info.records, (unsigned long long)info.bytes,
               info.crc);
    return 0;
}

/* --- export --------------------------------------------------------------- */

static int export_opt(int c, const char *arg, void *u)
{
    if (c == 'p') {
        *(const char **)u = arg;
        return 0;
    }
    return 2;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option lo[] = {{"prefix", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
    const char *file, *prefix = "";
    char err[MS_ERRMSG_SIZE];
    int rc;

    rc = parse(argc, argv, "export", usage_export, ":h", lo, export_opt,
               &prefix, &file);
    if (file == NULL)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    struct ms_bytes p = {(const uint8_t *)prefix, strlen(prefix)};
    if (ms_snaptool_export_file(file, p, stdout, NULL, err, sizeof(err)) != 0)
        return fail("export", file, err);
    return 0;
}

/* --- restore -------------------------------------------------------------- */

static int restore_opt(int c, const char *arg, void *u)
{
    struct ms_snaptool_restore *o = u;

    switch (c) {
    case 'd':
        o->data_dir = arg;
        return 0;
    case 'n':
        o->name = arg;
        return 0;
    case 'c':
        o->initial_cluster = arg;
        return 0;
    }
    return 2;
}

static int cmd_restore(int argc, char **argv)
{
    static const struct option lo[] = {
        {"data-dir", required_argument, NULL, 'd'},
        {"name", required_argument, NULL, 'n'},
        {"initial-cluster", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    struct ms_snaptool_restore o = {0};
    struct ms_snapshot_info info;
    char err[MS_ERRMSG_SIZE];
    const char *file;
    int rc;

    rc = parse(argc, argv, "restore", usage_restore, ":h", lo, restore_opt, &o,
               &file);
    if (file == NULL)
        return rc;
    if (o.data_dir == NULL || o.data_dir[0] == '\0')
        return usage_error("restore", "%s--data-dir DIR missing", "");
    if (o.name == NULL)
        return usage_error("restore", "%s--name NAME missing", "");
    if (o.initial_cluster == NULL)
        return usage_error("restore", "%s--initial-cluster LIST missing", "");
    if (ms_snaptool_check_cluster(o.name, o.initial_cluster, err,
                                  sizeof(err)) != 0)
        return usage_error("restore", "%s", err);
    if (ms_snaptool_restore(file, &o, &info, err, sizeof(err)) != 0)
        return fail("restore", file, err);
    printf("restored %s into %s: revision %lld, %llu keys, member %s of "
           "%s\n",
           file, o.data_dir, (long long)info.header.revision,
           (unsigned long long)info.live_keys, o.name, o.initial_cluster);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"save", cmd_save},       {"status", cmd_status},
        {"verify", cmd_verify},   {"export", cmd_export},
        {"restore", cmd_restore},
    };

    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, PROG ": unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
