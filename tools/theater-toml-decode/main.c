/* theater-toml-decode - the toml-test decoder interface for our parser.
 *
 * Reads one TOML document from standard input and writes the suite's tagged
 * JSON to standard output (exit 0), or the parse error to standard error
 * (exit 1). Input is bounded by --max-size (default: the library's 1 MiB) so
 * a huge stream is refused without being held in memory.
 *
 *   theater-toml-decode [--name NAME] [--max-size BYTES] < file.toml
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/toml/toml.h"
#include "src/util/buf.h"
#include "src/util/json.h"

static int usage(void)
{
	fprintf(stderr, "usage: theater-toml-decode [--name NAME] [--max-size BYTES] < in.toml\n");
	return 2;
}

/* Reads f to the end; past the buffer's limit fails with ERR_TOO_LARGE. */
static enum err_code read_all(FILE *f, struct buf *b)
{
	char chunk[65536];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
		enum err_code rc = buf_append(b, chunk, n);
		if (rc)
			return rc;
	}
	return ferror(f) ? ERR_IO : ERR_OK;
}

static int parse_args(int argc, char **argv, struct toml_options *opt)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
			opt->name = argv[++i];
		} else if (strcmp(argv[i], "--max-size") == 0 && i + 1 < argc) {
			char *end;
			unsigned long long v = strtoull(argv[++i], &end, 10);
			if (*end || v == 0)
				return -1;
			opt->max_size = (size_t)v;
		} else {
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct toml_options opt = {.name = "stdin"};
	if (parse_args(argc, argv, &opt) < 0)
		return usage();
	size_t limit = opt.max_size ? opt.max_size : TOML_MAX_SIZE_DEFAULT;
	struct buf in;
	struct err err = {0};
	struct toml_value *doc = NULL;
	json_t *json = NULL;
	int status = 1;
	/* One byte over the limit is enough for toml_parse to say "too large". */
	buf_init(&in, limit + 1);
	enum err_code rc = read_all(stdin, &in);
	if (rc == ERR_TOO_LARGE) {
		fprintf(stderr, "%s: document is over the limit of %zu bytes\n", opt.name, limit);
		goto done;
	}
	if (rc) {
		fprintf(stderr, "%s: cannot read standard input\n", opt.name);
		goto done;
	}
	if (toml_parse(in.data, in.len, &opt, &doc, NULL, &err) != ERR_OK) {
		fprintf(stderr, "%s\n", err.msg);
		goto done;
	}
	json = toml_to_tagged_json(doc);
	if (!json || json_dumpf(json, stdout, JSON_INDENT(2) | JSON_ENSURE_ASCII) < 0) {
		fprintf(stderr, "%s: cannot write json\n", opt.name);
		goto done;
	}
	fputc('\n', stdout);
	status = fflush(stdout) == 0 ? 0 : 1;
done:
	json_decref(json);
	toml_free(doc);
	buf_release(&in);
	return status;
}
