/* load.c - metastore-bench load (not implemented yet). */
#include <stdio.h>

#include "bench.h"

int bench_load_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "metastore-bench load: not implemented\n");
    return 1;
}
