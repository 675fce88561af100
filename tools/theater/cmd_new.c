/* cmd_new.c - `theater new`: scaffold an actor project from a template.
 *
 * The mechanism is data only: a template is a folder of files (embedded at
 * build time, templates.h); the project is a copy of it into DIR/NAME with
 * every __NAME__ in paths and contents replaced by the name. Nothing is
 * overwritten: an existing target folder is refused before anything is
 * written. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "src/util/buf.h"
#include "src/util/dirs.h"
#include "tools/theater/cli.h"
#include "tools/theater/templates.h"

#define PLACEHOLDER "__NAME__"

static const char new_help[] =
	"usage: theater new [--lang LANG] [--dir DIR] NAME\n\n"
	"Create DIR/NAME (default ./NAME), a new actor project: its source, a build\n"
	"file and a manifest, from the template of LANG (default c). NAME starts with a\n"
	"lowercase letter and holds lowercase letters, digits, '-' and '_'.\n\n"
	"  -l, --lang LANG   c, rust or assemblyscript (those this build has; an\n"
	"                    unknown one lists them)\n"
	"  -d, --dir DIR     where to create the project folder (default .; made if\n"
	"                    missing)\n"
	"  --list            list the languages and their files\n";

static int valid_name(const char *s)
{
	if (!(*s >= 'a' && *s <= 'z') || strlen(s) > 64)
		return 0;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") == strlen(s);
}

static int has_lang(const char *lang)
{
	for (const struct template_file *f = template_files; f->lang; f++)
		if (!strcmp(f->lang, lang))
			return 1;
	return 0;
}

/* The languages, comma-separated, into out. */
static void langs(char *out, size_t n)
{
	out[0] = '\0';
	for (const struct template_file *f = template_files; f->lang; f++) {
		char item[64];
		snprintf(item, sizeof(item), "%s, ", f->lang);
		if (!strstr(out, item))
			strncat(out, item, n - strlen(out) - 1);
	}
	size_t len = strlen(out);
	if (len >= 2)
		out[len - 2] = '\0';
}

/* Appends data with every placeholder replaced by name. */
static enum err_code substitute(struct buf *b, const char *data, size_t len, const char *name)
{
	size_t k = strlen(PLACEHOLDER);
	enum err_code rc = ERR_OK;
	size_t i = 0;
	while (i < len && !rc) {
		const char *hit = memmem(data + i, len - i, PLACEHOLDER, k);
		size_t upto = hit ? (size_t)(hit - data) : len;
		rc = buf_append(b, data + i, upto - i);
		if (!rc && hit)
			rc = buf_puts(b, name);
		i = hit ? upto + k : len;
	}
	return rc;
}

/* mkdir -p for the folders of path (not the last component). */
static int make_parents(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int bad = mkdir(path, 0755) != 0 && errno != EEXIST;
		*p = '/';
		if (bad)
			return -1;
	}
	return 0;
}

static int write_one(const char *root, const struct template_file *f, const char *name)
{
	struct buf rel, path, data;
	buf_init(&rel, 4096);
	buf_init(&path, 8192);
	buf_init(&data, 0);
	int rc = EXIT_USAGE;
	FILE *out = NULL;
	if (substitute(&rel, f->path, strlen(f->path), name) ||
	    buf_printf(&path, "%s/%s", root, rel.data) ||
	    substitute(&data, (const char *)f->data, f->len, name)) {
		cli_error("out of memory");
		goto done;
	}
	int fd = -1;
	if (make_parents(path.data) ||
	    (fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)f->mode)) < 0 ||
	    !(out = fdopen(fd, "wb"))) {
		if (fd >= 0)
			close(fd);
		cli_error("cannot create '%s': %s", path.data, strerror(errno));
		goto done;
	}
	if (fwrite(data.data ? data.data : "", 1, data.len, out) != data.len ||
	    fclose(out) != 0) {
		out = NULL;
		cli_error("cannot write '%s': %s", path.data, strerror(errno));
		goto done;
	}
	out = NULL;
	printf("  %s\n", rel.data);
	rc = EXIT_OK;
done:
	if (out)
		fclose(out);
	buf_release(&rel);
	buf_release(&path);
	buf_release(&data);
	return rc;
}

/* Each language once (in the order of their first file), with its files. */
static void list_templates(void)
{
	for (const struct template_file *f = template_files; f->lang; f++) {
		int seen = 0;
		for (const struct template_file *g = template_files; g < f && !seen; g++)
			seen = !strcmp(g->lang, f->lang);
		if (seen)
			continue;
		printf("%s:\n", f->lang);
		for (const struct template_file *g = f; g->lang; g++)
			if (!strcmp(g->lang, f->lang))
				printf("  %s%s\n", g->path, g->mode & 0111 ? " (executable)" : "");
	}
}

static int has_file(const char *lang, const char *path)
{
	for (const struct template_file *f = template_files; f->lang; f++)
		if (!strcmp(f->lang, lang) && !strcmp(f->path, path))
			return 1;
	return 0;
}

/* How to build the new project: its Makefile, or its build.sh, which finds
 * the SDK through THEATER_SDK (set, or the sdk/ folder theater was built
 * from when it is still there). */
static void next_steps(const char *root, const char *lang)
{
	struct stat st;
	const char *sdk = getenv("THEATER_SDK");
	if ((!sdk || !*sdk) && stat(THEATER_SDK_SRC, &st) == 0)
		sdk = THEATER_SDK_SRC;
	if (has_file(lang, "Makefile"))
		printf("build it: make -C %s\n", root);
	else if (has_file(lang, "build.sh"))
		printf("build it: THEATER_SDK=%s %s/build.sh\n", sdk && *sdk ? sdk : "<theater>/sdk",
		       root);
	if (has_file(lang, "README.md"))
		printf("then see %s/README.md\n", root);
}

int cmd_new(struct cli *c, int argc, char **argv)
{
	const char *lang = "c", *dir = ".";
	char *pos[1], all[256], root[4096];
	int npos, rc, list = 0;
	const struct cli_opt opts[] = {{"lang", 'l', 1, &lang, NULL}, {"dir", 'd', 1, &dir, NULL},
				       {"list", 0, 0, NULL, &list}, {0}};
	if ((rc = cli_parse(c, argc, argv, opts, new_help, pos, 0, 1, &npos)) >= 0)
		return rc;
	if (list) {
		list_templates();
		return EXIT_OK;
	}
	if (npos != 1)
		return cli_usage(c, "missing the project's NAME");
	langs(all, sizeof(all));
	if (!has_lang(lang)) {
		cli_error("no template for language '%s' in this build (it has: %s); a language's "
			  "template comes from sdk/templates/%s/ when theater is built", lang,
			  *all ? all : "none", lang);
		return EXIT_USAGE;
	}
	if (!valid_name(pos[0]))
		return cli_usage(c, "'%s' is not a project name (a lowercase letter, then "
				 "lowercase letters, digits, '-' or '_'; at most 64)", pos[0]);
	struct err de = {0};
	if (dirs_make(dir, &de)) {
		cli_error("%s", de.msg);
		return EXIT_USAGE;
	}
	snprintf(root, sizeof(root), "%s/%s", dir, pos[0]);
	if (mkdir(root, 0755) != 0) {
		cli_error("cannot create '%s': %s", root,
			  errno == EEXIST ? "it exists already (nothing was written)" : strerror(errno));
		return EXIT_USAGE;
	}
	printf("created %s (%s):\n", root, lang);
	for (const struct template_file *f = template_files; f->lang; f++)
		if (!strcmp(f->lang, lang) && (rc = write_one(root, f, pos[0])))
			return rc;
	next_steps(root, lang);
	return EXIT_OK;
}
