/* toml_bench.c - TOML parser benchmark.
 *
 * 1. Throughput: parses a generated document of several megabytes (a
 *    realistic mix: tables, arrays of tables, inline tables, basic strings
 *    with escapes, literal strings, integers, floats, booleans, date-times,
 *    comments) several times and prints MB/s.
 * 2. Manifest: parses a typical ~1 KB actor manifest many times and prints
 *    the average time per parse (target: under 20 microseconds), and the
 *    same with toml_to_json added.
 *
 *   toml-bench [--mb N] [--iterations N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "src/toml/toml.h"
#include "src/util/buf.h"
#include "src/util/json.h"

static const char manifest[] =
	"# echo actor: answers every request with its own input\n"
	"name = \"echo-actor\"\n"
	"version = \"0.2.1\"\n"
	"description = \"Echoes requests back and counts them\"\n"
	"package = \"store://default/hash/"
	"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n"
	"static_package = true\n"
	"save_chain = true\n"
	"\n"
	"[initial_state]\n"
	"count = 0\n"
	"greeting = \"hello, world\\n\"\n"
	"started = 2024-05-01T12:00:00Z\n"
	"weights = [0.25, 0.5, 0.25]\n"
	"\n"
	"[restart]\n"
	"policy = \"on-failure\"\n"
	"max_restarts = 5\n"
	"window_s = 60\n"
	"backoff_ms = 100\n"
	"backoff_max_ms = 10_000\n"
	"\n"
	"[limits]\n"
	"fuel = 50_000_000\n"
	"memory_bytes = 67_108_864\n"
	"call_timeout_ms = 5000\n"
	"\n"
	"[[handler]]\n"
	"type = \"runtime\"\n"
	"\n"
	"[[handler]]\n"
	"type = \"message-server\"\n"
	"config = { mailbox = 256, priority = \"normal\" }\n"
	"\n"
	"[[handler]]\n"
	"type = \"http-client\"\n"
	"allowed_hosts = [\"api.example.com\", \"127.0.0.1:8081\"]\n"
	"timeout_ms = 3000\n"
	"\n"
	"[[handler]]\n"
	"type = \"store\"\n"
	"store_id = 'default'\n"
	"\n"
	"[permission_policy]\n"
	"log = true\n"
	"random = true\n"
	"timing = { max_sleep_ms = 1000 }\n";

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A deterministic pseudo-random number (xorshift). */
static unsigned next_rand(unsigned *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void gen_actor(struct buf *b, unsigned i, unsigned *seed)
{
	unsigned r = next_rand(seed);
	buf_printf(b,
		   "\n# actor %u\n[[actor]]\nid = %u\nname = \"actor-%u\"\n"
		   "description = \"An actor that does \\\"work\\\" n\\u00b0%u,\\twith escapes\"\n"
		   "enabled = %s\nratio = %u.%04u\nscore = %de%d\n"
		   "created = 2024-%02u-%02uT%02u:%02u:%02u.%03uZ\n"
		   "birthday = 19%02u-%02u-%02u\nalarm = %02u:%02u:00\n"
		   "tags = [\"alpha\", \"beta\", 'gamma-%u', \"delta\"]\n"
		   "limits = { fuel = %u_000, memory_bytes = 0x%x, strict = false }\n",
		   i, i, i, i, r & 1 ? "true" : "false", r % 100, r % 10000,
		   (int)(r % 999) - 499, (int)(r % 20) - 10, 1 + r % 12, 1 + r % 28,
		   r % 24, r % 60, (r >> 8) % 60, r % 1000, r % 100, 1 + r % 12, 1 + r % 28,
		   r % 24, r % 60, r % 97, r % 1000 + 1, r);
	buf_printf(b,
		   "\n[actor.config]\npath = 'C:\\Users\\actor%u\\data'\nretries = %u\n"
		   "notes = \"\"\"\nline one of %u\nline two, with a \\\n    continuation\"\"\"\n",
		   i, r % 7, i);
	for (unsigned h = 0; h < 1 + r % 3; h++)
		buf_printf(b, "\n[[actor.handler]]\ntype = \"%s\"\npriority = %u\n",
			   h == 0 ? "runtime" : h == 1 ? "store" : "http-client", h);
}

static char *gen_doc(size_t target, size_t *len_out)
{
	struct buf b;
	buf_init(&b, 0);
	unsigned seed = 2463534242u;
	buf_puts(&b, "# generated benchmark document\ntitle = \"bench\"\n"
		     "[owner]\nname = \"Tom Preston-Werner\"\ndob = 1979-05-27T07:32:00-08:00\n");
	for (unsigned i = 0; b.len < target; i++)
		gen_actor(&b, i, &seed);
	return buf_steal(&b, len_out);
}

static int bench_large(size_t mb, int iterations)
{
	size_t len;
	char *doc = gen_doc(mb << 20, &len);
	struct toml_options opt = {.name = "bench.toml", .max_size = len};
	struct toml_value *v = NULL;
	struct err err = {0};
	if (!doc || toml_parse(doc, len, &opt, &v, NULL, &err) != ERR_OK) {
		fprintf(stderr, "toml bench: generated document refused: %s\n", err.msg);
		free(doc);
		return -1;
	}
	size_t actors = toml_array_len(toml_table_get(v, "actor"));
	toml_free(v);
	double best = 1e9, total = 0;
	for (int i = 0; i < iterations; i++) {
		double t0 = now_s();
		toml_parse(doc, len, &opt, &v, NULL, &err);
		double dt = now_s() - t0;
		toml_free(v);
		total += dt;
		if (dt < best)
			best = dt;
	}
	double mbytes = (double)len / 1e6;
	printf("large document: %.2f MB, %zu actors, %d parses\n", mbytes, actors, iterations);
	printf("  throughput: %.1f MB/s average, %.1f MB/s best (%.2f ms per parse)\n",
	       mbytes * iterations / total, mbytes / best, total / iterations * 1e3);
	free(doc);
	return 0;
}

static int bench_manifest(int iterations)
{
	struct toml_value *v = NULL;
	struct err err = {0};
	size_t len = sizeof(manifest) - 1;
	if (toml_parse(manifest, len, NULL, &v, NULL, &err) != ERR_OK) {
		fprintf(stderr, "toml bench: manifest refused: %s\n", err.msg);
		return -1;
	}
	toml_free(v);
	double t0 = now_s();
	for (int i = 0; i < iterations; i++) {
		toml_parse(manifest, len, NULL, &v, NULL, &err);
		toml_free(v);
	}
	double parse_us = (now_s() - t0) / iterations * 1e6;
	t0 = now_s();
	for (int i = 0; i < iterations; i++) {
		toml_parse(manifest, len, NULL, &v, NULL, &err);
		json_decref(toml_to_json(v));
		toml_free(v);
	}
	double json_us = (now_s() - t0) / iterations * 1e6;
	printf("manifest: %zu bytes, %d parses\n", len, iterations);
	printf("  parse: %.2f us per parse (target < 20 us), %.1f MB/s\n", parse_us,
	       (double)len / parse_us);
	printf("  parse + toml_to_json: %.2f us\n", json_us);
	return 0;
}

int main(int argc, char **argv)
{
	size_t mb = 8;
	int iterations = 20000;
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--mb") == 0)
			mb = (size_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--iterations") == 0)
			iterations = atoi(argv[i + 1]);
	}
	if (mb < 1 || mb > 512 || iterations < 1) {
		fprintf(stderr, "usage: toml-bench [--mb 1..512] [--iterations N]\n");
		return 2;
	}
	if (bench_large(mb, 10) < 0 || bench_manifest(iterations) < 0)
		return 1;
	return 0;
}
