/* main.c - metastore-bench: dispatch to the codec, store and load benchmarks. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static const char usage[] =
    "usage: metastore-bench <command> [options]\n"
    "\n"
    "commands:\n"
    "  codec   JSON vs protobuf encode/decode of operation batches\n"
    "  store   apply batches of puts to a store backend (memory|rocksdb)\n"
    "  load    load generator against a running server or cluster\n"
    "\n"
    "Run 'metastore-bench <command> --help' for the options of a command.\n"
    "See metastore-bench(1).\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {
        {"codec", bench_codec_main},
        {"store", bench_store_main},
        {"load", bench_load_main},
    };

    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "metastore-bench: unknown command '%s'\n%s", argv[1],
            usage);
    return 2;
}
