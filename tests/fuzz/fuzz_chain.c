/* fuzz_chain.c - libFuzzer entry point over the chain reader (src/chain.c).
 *
 * Each input is taken as the bytes of a chain file: written as
 * <tmp>/chains/<id>.chain, then read the three ways the server reads chains:
 * chain_verify_file (offline, read-only), chain_scan_file (the index rebuild)
 * and chain_open (start-up: torn-tail truncation, hashes, the offset table),
 * after which every event is read back and the chain verified. Damage and
 * torn tails are the expected outcome; crashes, sanitizer reports, leaks and
 * hangs are the findings. The same function runs the committed regressions
 * in the normal build (regress_main.c), as the CTest test
 * fuzz_chain_regressions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define ID "00000000-0000-4000-8000-000000000000"

static char dir[256], path[512];

static enum err_code scan_cb(void *user, const struct chain_event *ev)
{
	size_t *n = user;
	(*n) += ev->data_len > 0;
	return ERR_OK;
}

static void cleanup(void)
{
	rmdir(dir);
}

static void setup(void)
{
	if (dir[0])
		return;
	atexit(cleanup);
	char tmpl[] = "/tmp/theater-fuzz-chain-XXXXXX";
	if (!mkdtemp(tmpl))
		abort();
	snprintf(dir, sizeof(dir), "%s", tmpl);
	snprintf(path, sizeof(path), "%s/%s.chain", dir, ID);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	setup();
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	if (size && fwrite(data, 1, size, f) != size)
		abort();
	fclose(f);
	struct chain_verify_result vr;
	struct err err;
	chain_verify_file(path, &vr, &err);
	size_t n = 0;
	chain_scan_file(path, scan_cb, &n, &vr, &err);
	struct chain *c = NULL;
	struct chain_open_report rep;
	if (chain_open(dir, ID, &c, &rep, &err) == ERR_OK) {
		uint64_t len = chain_length(c);
		for (uint64_t seq = 1; seq <= len && seq <= 4096; seq++) {
			struct chain_event ev;
			if (chain_read(c, seq, &ev, &err) == ERR_OK)
				chain_event_release(&ev);
		}
		chain_verify(c, &vr, &err);
		chain_close(c);
	}
	unlink(path);
	return 0;
}
