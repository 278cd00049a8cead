/* main.c - metastore-walinspect: option parsing; the work is in
 * pkg/raft/wal.c. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "raft/wal.h"

static const char usage[] =
    "Usage: metastore-walinspect [OPTIONS] DATA_DIR\n"
    "\n"
    "Reads the Raft log of a metastore data directory offline (the\n"
    "server's --data-dir or its raft/ subdirectory; the server may be\n"
    "running) and prints one line per entry. Never writes to DATA_DIR.\n"
    "\n"
    "Options:\n"
    "  --from N        show entries with index >= N\n"
    "  --to N          show entries with index <= N\n"
    "  --type T        show entries of type T: command, barrier or config\n"
    "  --key PREFIX    show command entries with an operation on a key\n"
    "                  starting with PREFIX (and only those operations)\n"
    "  --json          one JSON object per line: first {\"kind\":\"meta\"},\n"
    "                  then {\"kind\":\"entry\"} per entry (or the stats or\n"
    "                  verify object)\n"
    "  --stats         print counts instead of entries: entries per type,\n"
    "                  operations per kind, operations and bytes per\n"
    "                  command entry (min/p50/p99/max), bytes\n"
    "  --verify        check every checksum, the index sequence, the\n"
    "                  metadata and snapshot metadata, and that every\n"
    "                  entry decodes; print a one-line verdict\n"
    "  -h, --help      print this help and exit\n"
    "\n"
    "Exit status:\n"
    "  0  ok (a torn tail is only a warning without --verify)\n"
    "  1  corruption or runtime error (stderr names file and offset)\n"
    "  2  usage error\n"
    "  3  --verify: torn tail only (the last write of the log is\n"
    "     incomplete; everything before it is intact)\n";

enum {
    OPT_FROM = 256,
    OPT_TO,
    OPT_TYPE,
    OPT_KEY,
    OPT_JSON,
    OPT_STATS,
    OPT_VERIFY,
};

static const struct option options[] = {
    {"from", required_argument, NULL, OPT_FROM},
    {"to", required_argument, NULL, OPT_TO},
    {"type", required_argument, NULL, OPT_TYPE},
    {"key", required_argument, NULL, OPT_KEY},
    {"json", no_argument, NULL, OPT_JSON},
    {"stats", no_argument, NULL, OPT_STATS},
    {"verify", no_argument, NULL, OPT_VERIFY},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

static int bad_usage(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int bad_usage(const char *fmt, ...)
{
    va_list ap;

    fputs("metastore-walinspect: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry 'metastore-walinspect --help'.\n", stderr);
    return MS_WAL_EXIT_USAGE;
}

static int parse_index(const char *opt, const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (*s < '0' || *s > '9')
        return bad_usage("%s: '%s': expected an index", opt, s);
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return bad_usage("%s: '%s': expected an index", opt, s);
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct ms_wal_options o;
    int c, rc;

    memset(&o, 0, sizeof o);
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case OPT_FROM:
            if ((rc = parse_index("--from", optarg, &o.from)) != 0)
                return rc;
            break;
        case OPT_TO:
            if ((rc = parse_index("--to", optarg, &o.to)) != 0)
                return rc;
            if (o.to == 0)
                return bad_usage("--to: must be at least 1");
            break;
        case OPT_TYPE:
            if (strcmp(optarg, "command") == 0)
                o.type = MS_WAL_COMMAND;
            else if (strcmp(optarg, "barrier") == 0)
                o.type = MS_WAL_BARRIER;
            else if (strcmp(optarg, "config") == 0)
                o.type = MS_WAL_CHANGE;
            else
                return bad_usage("--type: '%s': expected command, barrier "
                                 "or config",
                                 optarg);
            break;
        case OPT_KEY:
            o.key_prefix = optarg;
            break;
        case OPT_JSON:
            o.json = true;
            break;
        case OPT_STATS:
            o.stats = true;
            break;
        case OPT_VERIFY:
            o.verify = true;
            break;
        case 'h':
            fputs(usage, stdout);
            return MS_WAL_EXIT_OK;
        case ':':
            return bad_usage("%s: missing argument", argv[optind - 1]);
        default:
            if (optopt != 0 && optopt < 256)
                return bad_usage("unknown option '-%c'", optopt);
            return bad_usage("unknown or malformed option '%s'",
                             argv[optind - 1]);
        }
    }
    if (optind == argc)
        return bad_usage("missing DATA_DIR");
    if (optind + 1 < argc)
        return bad_usage("too many arguments: '%s'", argv[optind + 1]);
    if (o.from > 0 && o.to > 0 && o.from > o.to)
        return bad_usage("--from %llu is after --to %llu",
                         (unsigned long long)o.from, (unsigned long long)o.to);
    if (o.stats && o.verify)
        return bad_usage("--stats and --verify cannot be combined");
    o.dir = argv[optind];
    return ms_wal_inspect(&o, stdout, stderr);
}
