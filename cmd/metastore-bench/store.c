/* store.c - metastore-bench store (not implemented yet). */
#include <stdio.h>

#include "bench.h"

int bench_store_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "metastore-bench store: not implemented\n");
    return 1;
}
