/* crc32c.h - CRC-32C (Castagnoli), with the CPU's crc32 instruction where
 * there is one (SSE 4.2) and a table otherwise. */
#ifndef MS_UTIL_CRC32C_H
#define MS_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues crc (0 to start) over buf[0..len): the usual CRC-32C (reflected
 * polynomial 0x82f63b78, initial and final xor 0xffffffff), so
 * ms_crc32c("123456789", 9, 0) == 0xe3069283 and
 * ms_crc32c(b, n, ms_crc32c(a, m, 0)) is the CRC of a followed by b. */
uint32_t ms_crc32c(const void *buf, size_t len, uint32_t crc);

/* The same with the table only (for tests). */
uint32_t ms_crc32c_sw(const void *buf, size_t len, uint32_t crc);

/* Whether ms_crc32c uses the crc32 instruction on this machine. */
int ms_crc32c_hw(void);

#endif
