/* crc32c.c - CRC-32C, hardware or table. */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY 0x82f63b78u

static uint32_t table[8][256];
static int have_hw;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
    for (unsigned i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
        table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            table[t][i] =
                (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
#if defined(__x86_64__)
    __builtin_cpu_init();
    have_hw = __builtin_cpu_supports("sse4.2") != 0;
#endif
}

/* Slicing by 8: eight bytes per step through eight tables. */
static uint32_t crc_table(const uint8_t *p, size_t len, uint32_t c)
{
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        w ^= c; /* little endian: the crc meets the first four bytes */
        c = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^
            table[5][(w >> 16) & 0xff] ^ table[4][(w >> 24) & 0xff] ^
            table[3][(w >> 32) & 0xff] ^ table[2][(w >> 40) & 0xff] ^
            table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
        p += 8;
        len -= 8;
    }
    while (len-- > 0)
        c = (c >> 8) ^ table[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_hw(const uint8_t *p,
                                                         size_t len, uint32_t c)
{
    uint64_t c64 = c;

    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        len -= 8;
    }
    c = (uint32_t)c64;
    while (len-- > 0)
        c = __builtin_ia32_crc32qi(c, *p++);
    return c;
}
#endif

uint32_t ms_crc32c(const void *buf, size_t len, uint32_t crc)
{
    uint32_t c = ~crc;

    pthread_once(&once, init);
#if defined(__x86_64__)
    if (have_hw)
        return ~crc_hw(buf, len, c);
#endif
    return ~crc_table(buf, len, c);
}

uint32_t ms_crc32c_sw(const void *buf, size_t len, uint32_t crc)
{
    pthread_once(&once, init);
    return ~crc_table(buf, len, ~crc);
}

int ms_crc32c_hw(void)
{
    pthread_once(&once, init);
    return have_hw;
}
