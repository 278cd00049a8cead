/* bench.h - the subcommands of metastore-bench, one file each. */
#ifndef MS_CMD_BENCH_H
#define MS_CMD_BENCH_H

/* Each takes the arguments after the subcommand name (argv[0] is the
 * subcommand) and returns the process exit status: 0 ok, 1 runtime error,
 * 2 usage error. */
int bench_codec_main(int argc, char **argv);
int bench_store_main(int argc, char **argv);
int bench_load_main(int argc, char **argv);

#endif /* MS_CMD_BENCH_H */
