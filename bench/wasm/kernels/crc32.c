/* crc32.c - benchmark kernel: table-driven CRC-32 (IEEE) over a buffer. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define BUF_BYTES (1u << 20)

int main(void)
{
	uint32_t table[256];
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	uint8_t *buf = malloc(BUF_BYTES);
	if (!buf)
		return 1;
	for (uint32_t i = 0; i < BUF_BYTES; i++)
		buf[i] = (uint8_t)(i ^ (i >> 7) ^ (i >> 13));
	uint32_t acc = 0;
	for (int round = 0; round < 100; round++) {
		uint32_t crc = 0xffffffffu;
		for (uint32_t i = 0; i < BUF_BYTES; i++)
			crc = table[(crc ^ buf[i]) & 0xff] ^ (crc >> 8);
		acc = acc * 31 + (crc ^ 0xffffffffu);
		buf[round] ^= (uint8_t)acc;
	}
	printf("crc32 checksum %08x\n", acc);
	free(buf);
	return 0;
}
