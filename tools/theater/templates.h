/* templates.h - the project templates of `theater new`, embedded at build
 * time (tools/theater/CMakeLists.txt, embed_templates.cmake): every file of
 * every language's template folder, with its path inside the project. */
#ifndef THEATER_CLI_TEMPLATES_H
#define THEATER_CLI_TEMPLATES_H

#include <stddef.h>

struct template_file {
	const char *lang;              /* "c", "rust", ... */
	const char *path;              /* relative, '/'-separated; may hold __NAME__ */
	const unsigned char *data;
	size_t len;
	int mode;                      /* 0644, or 0755 for a file that was executable */
};

/* Ends with an entry whose lang is NULL. */
extern const struct template_file template_files[];

#endif
