/* codec.c - metastore-bench codec (not implemented yet). */
#include <stdio.h>

#include "bench.h"

int bench_codec_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "metastore-bench codec: not implemented\n");
    return 1;
}
