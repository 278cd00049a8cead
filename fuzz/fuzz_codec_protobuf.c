/* fuzz_codec_protobuf.c - libFuzzer target: arbitrary bytes as a protobuf
 * codec payload (the entry header is prepended). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fuzz_codec(data, size, MS_CODEC_PROTOBUF);
}
