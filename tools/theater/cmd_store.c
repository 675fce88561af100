/* cmd_store.c - the content store (store put / ls / label) and secrets
 * (secret set / ls / rm). Listings whose shape the server decides are printed
 * as tables of their scalar fields, so new fields show up without a change
 * here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/theater/cli.h"
#include "tools/theater/table.h"

/* The list inside an answer: the answer itself when it is an array, else its
 * first array member ("items", "stores", "labels", ...). */
static json_t *list_of(json_t *j)
{
	if (json_is_array(j))
		return j;
	const char *k;
	json_t *v;
	json_object_foreach(j, k, v)
		if (json_is_array(v))
			return v;
	return NULL;
}

static void cell_text(json_t *v, char *out, size_t n)
{
	if (json_is_string(v))
		snprintf(out, n, "%s", json_string_value(v));
	else if (json_is_integer(v))
		snprintf(out, n, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(out, n, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(out, n, "%s", json_is_true(v) ? "true" : "false");
	else
		snprintf(out, n, "-");
}

/* A table of the scalar fields of the first item (strings: one column). */
static void print_list(json_t *list, const char *what)
{
	json_t *first = json_array_get(list, 0);
	if (!first) {
		printf("(no %s)\n", what);
		return;
	}
	if (!json_is_object(first)) {
		size_t i;
		json_t *v;
		char text[512];
		json_array_foreach(list, i, v) {
			cell_text(v, text, sizeof(text));
			printf("%s\n", text);
		}
		return;
	}
	const char *heads[TABLE_MAX_COLS];
	char upper[TABLE_MAX_COLS][64];
	const char *keys[TABLE_MAX_COLS];
	int n = 0;
	const char *k;
	json_t *v;
	json_object_foreach(first, k, v) {
		if (n == TABLE_MAX_COLS || json_is_object(v) || json_is_array(v))
			continue;
		size_t j = 0;
		for (; k[j] && j < 63; j++)
			upper[n][j] = (char)(k[j] >= 'a' && k[j] <= 'z' ? k[j] - 32 : k[j]);
		upper[n][j] = '\0';
		heads[n] = upper[n];
		keys[n++] = k;
	}
	struct table t;
	table_init(&t, n, heads);
	size_t i;
	json_t *item;
	char cells_text[TABLE_MAX_COLS][512];
	json_array_foreach(list, i, item) {
		const char *cells[TABLE_MAX_COLS];
		for (int c = 0; c < n; c++) {
			cell_text(json_object_get(item, keys[c]), cells_text[c], sizeof(cells_text[c]));
			cells[c] = cells_text[c];
		}
		table_add(&t, cells);
	}
	table_print(&t, stdout);
	table_release(&t);
}

/* GET path and print its list (or the server's JSON). */
static int get_list(struct cli *c, const char *path, const char *what)
{
	json_t *j;
	int rc = cli_json(c, "GET", path, NULL, NULL, 0, &j, NULL);
	if (rc)
		return rc;
	json_t *list = list_of(j);
	if (c->json || !list)
		cli_print_json(j);
	else
		print_list(list, what);
	json_decref(j);
	return EXIT_OK;
}

/* ---- store ---- */

static const char store_help[] =
	"usage: theater store put STORE FILE [--label LABEL]   (- reads stdin)\n"
	"       theater store ls [STORE]\n"
	"       theater store label STORE                      (list the labels)\n"
	"       theater store label STORE LABEL                (show one)\n"
	"       theater store label STORE LABEL HASH           (point it at a hash)\n\n"
	"The content store: bytes addressed by their SHA-256, in named stores, with\n"
	"labels. `put` prints the reference (store://STORE/hash/SHA256) to use as a\n"
	"manifest's package; with --label it also points LABEL at it, so\n"
	"store://STORE/LABEL works too. `ls` lists the stores, or one store's objects.\n"
	"HASH is a sha256 or a store://STORE/hash/SHA256 reference.\n";

static int store_path(char *out, size_t n, const char *store, const char *rest)
{
	char *e = client_escape(store);
	int len = snprintf(out, n, "/store/%s%s", e ? e : "", rest ? rest : "");
	free(e);
	return len;
}

static int label_put(struct cli *c, const char *store, const char *label, const char *hash)
{
	char path[512], *el = client_escape(label), rest[300];
	snprintf(rest, sizeof(rest), "/labels/%s", el ? el : "");
	free(el);
	store_path(path, sizeof(path), store, rest);
	json_t *j;
	int rc = cli_json(c, "PUT", path, "text/plain", hash, strlen(hash), &j, NULL);
	json_decref(j);
	return rc;
}

static int store_put(struct cli *c, char **pos, int npos, const char *label)
{
	if (npos != 3)
		return cli_usage(c, "store put wants STORE FILE");
	size_t len;
	char *data = cli_read_file(pos[2], &len);
	if (!data)
		return EXIT_USAGE;
	char path[512];
	store_path(path, sizeof(path), pos[1], NULL);
	json_t *j;
	int rc = cli_json(c, "POST", path, "application/octet-stream", data, len, &j, NULL);
	free(data);
	if (rc)
		return rc;
	if (label && (rc = label_put(c, pos[1], label, cli_str(j, "sha256") ? cli_str(j, "sha256") : ""))) {
		json_decref(j);
		return rc;
	}
	if (c->json)
		cli_print_json(j);
	else
		printf("%s\n", cli_str(j, "reference"));
	if (!c->json && label)
		printf("store://%s/%s\n", pos[1], label);
	json_decref(j);
	return EXIT_OK;
}

static int store_label(struct cli *c, char **pos, int npos)
{
	char path[512], rest[300];
	if (npos == 2) {
		store_path(path, sizeof(path), pos[1], "/labels");
		return get_list(c, path, "labels");
	}
	if (npos == 4) {
		int rc = label_put(c, pos[1], pos[2], pos[3]);
		if (!rc && !c->json)
			printf("store://%s/%s -> %s\n", pos[1], pos[2], pos[3]);
		return rc;
	}
	char *el = client_escape(pos[2]);
	snprintf(rest, sizeof(rest), "/labels/%s", el ? el : "");
	free(el);
	store_path(path, sizeof(path), pos[1], rest);
	json_t *j;
	int rc = cli_json(c, "GET", path, NULL, NULL, 0, &j, NULL);
	if (rc)
		return rc;
	if (c->json)
		cli_print_json(j);
	else
		printf("%s -> %s\n", cli_str(j, "label"), cli_str(j, "reference"));
	json_decref(j);
	return EXIT_OK;
}

int cmd_store(struct cli *c, int argc, char **argv)
{
	const char *label = NULL;
	char *pos[4];
	int npos, rc;
	const struct cli_opt opts[] = {{"label", 'l', 1, &label, NULL}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, store_help, pos, 1, 4, &npos)) >= 0)
		return rc;
	if (!strcmp(pos[0], "put")) {
		c->cmd = "store put";
		return store_put(c, pos, npos, label);
	}
	if (label)
		return cli_usage(c, "--label goes with 'store put'");
	if (!strcmp(pos[0], "ls") && npos <= 2) {
		char path[512] = "/store";
		if (npos == 2)
			store_path(path, sizeof(path), pos[1], NULL);
		return get_list(c, path, npos == 2 ? "objects" : "stores");
	}
	if (!strcmp(pos[0], "label") && npos >= 2)
		return store_label(c, pos, npos);
	return cli_usage(c, "'%s' with %d arguments is not a store command (put, ls, label)",
			 pos[0], npos - 1);
}

/* ---- secret ---- */

static const char secret_help[] =
	"usage: theater secret set NAME [--file FILE]   (the value from FILE, or stdin)\n"
	"       theater secret set NAME --value VALUE   (visible in ps; avoid)\n"
	"       theater secret ls\n"
	"       theater secret rm NAME\n\n"
	"Secrets are granted to actors by name in their manifests; the server never\n"
	"shows a value again (ls lists names and metadata only). A value read from a\n"
	"file or stdin is sent byte for byte, except one final newline, which is\n"
	"dropped (so `echo $KEY | theater secret set openai` does what it says).\n";

static int secret_set(struct cli *c, const char *name, const char *file, const char *value)
{
	size_t len;
	char *data;
	if (file && value)
		return cli_usage(c, "give the value with --file or --value, not both");
	if (value) {
		data = strdup(value);
		len = strlen(value);
	} else {
		data = cli_read_file(file ? file : "-", &len);
		if (data && len && data[len - 1] == '\n')
			len -= len > 1 && data[len - 2] == '\r' ? 2 : 1;
	}
	if (!data)
		return EXIT_USAGE;
	char path[512], *e = client_escape(name);
	snprintf(path, sizeof(path), "/secrets/%s", e ? e : "");
	free(e);
	json_t *j;
	int rc = cli_json(c, "PUT", path, "application/octet-stream", data, len, &j, NULL);
	free(data);
	if (rc)
		return rc;
	if (c->json && !json_is_null(j))
		cli_print_json(j);
	else if (!c->json)
		printf("secret '%s' set (%zu bytes)\n", name, len);
	json_decref(j);
	return EXIT_OK;
}

int cmd_secret(struct cli *c, int argc, char **argv)
{
	const char *file = NULL, *value = NULL;
	char *pos[2];
	int npos, rc;
	const struct cli_opt opts[] = {{"file", 'f', 1, &file, NULL}, {"value", 0, 1, &value, NULL},
				       {0}};
	if ((rc = cli_parse(c, argc, argv, opts, secret_help, pos, 1, 2, &npos)) >= 0)
		return rc;
	if (!strcmp(pos[0], "set") && npos == 2) {
		c->cmd = "secret set";
		return secret_set(c, pos[1], file, value);
	}
	if (file || value)
		return cli_usage(c, "--file and --value go with 'secret set'");
	if (!strcmp(pos[0], "ls") && npos == 1)
		return get_list(c, "/secrets", "secrets");
	if (!strcmp(pos[0], "rm") && npos == 2) {
		char path[512], *e = client_escape(pos[1]);
		snprintf(path, sizeof(path), "/secrets/%s", e ? e : "");
		free(e);
		json_t *j;
		if ((rc = cli_json(c, "DELETE", path, NULL, NULL, 0, &j, NULL)))
			return rc;
		json_decref(j);
		if (!c->json)
			printf("secret '%s' removed\n", pos[1]);
		return EXIT_OK;
	}
	return cli_usage(c, "not a secret command (set NAME, ls, rm NAME)");
}
