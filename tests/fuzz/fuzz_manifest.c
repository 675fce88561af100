/* fuzz_manifest.c - libFuzzer entry point over what a client's manifest goes
 * through: the TOML parser (src/toml) and the manifest checker (src/manifest*.c).
 *
 * Each input is a document, parsed and checked the ways the server does it:
 * toml_parse with the default limits and with a small depth limit, the tree
 * turned into JSON both ways (toml_to_json for manifests, the tagged form of the
 * conformance tools); manifest_load with the format detected from the content
 * (POST /actors with a body), forced to JSON and to TOML (a manifest_ref's
 * extension), and with unsupported handlers allowed (validation). Refusals are
 * the expected outcome; crashes, sanitizer reports, leaks, hangs and a refusal
 * without a message or a problem are the findings. The same function runs the
 * committed regressions in the normal build (regress_main.c), as the CTest test
 * fuzz_manifest_regressions.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "src/manifest.h"
#include "src/toml/toml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void parse_toml(const char *text, size_t len, int depth)
{
	struct toml_options opt = {.name = "fuzz", .max_depth = depth};
	struct toml_value *doc = NULL;
	struct toml_errpos pos;
	struct err err = {0};
	if (toml_parse(text, len, &opt, &doc, &pos, &err) != ERR_OK) {
		if (doc || !err.msg[0])
			abort();       /* a refusal leaves no tree and says why */
		return;
	}
	json_t *j = toml_to_json(doc);
	json_t *t = toml_to_tagged_json(doc);
	json_decref(j);
	json_decref(t);
	toml_free(doc);
}

static void load(const char *text, size_t len, enum manifest_format format, int unsupported)
{
	struct manifest_options opt = {.format = format, .name = "fuzz",
				       .allow_unsupported = unsupported};
	struct manifest *m = NULL;
	struct manifest_problems probs = {0};
	struct err err = {0};
	enum err_code rc = manifest_load(text, len, &opt, &m, &probs, &err);
	if (rc == ERR_OK) {
		if (!m || probs.n)
			abort();       /* accepted: a manifest and no problem */
		manifest_free(m);
	} else {
		if (m || !err.msg[0] || (rc != ERR_NOMEM && !probs.n && !probs.more))
			abort();       /* refused: no manifest, a message, a problem */
		json_t *pj = manifest_problems_json(&probs);
		json_decref(pj);
	}
	manifest_problems_release(&probs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	parse_toml(text, size, 0);
	parse_toml(text, size, 4);
	load(text, size, MANIFEST_FORMAT_AUTO, 0);
	load(text, size, MANIFEST_FORMAT_JSON, 0);
	load(text, size, MANIFEST_FORMAT_TOML, 0);
	load(text, size, MANIFEST_FORMAT_AUTO, 1);
	return 0;
}
