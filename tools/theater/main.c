/* theater - the command-line client of theater-server.
 *
 *   theater [--url URL] [--token TOKEN] [--json] COMMAND [ARGS...]
 *
 * The server is THEATER_URL (default http://127.0.0.1:8080) with the bearer
 * token THEATER_TOKEN (or the first line of THEATER_TOKEN_FILE); --url and
 * --token win over the environment, before or after the command. Exit codes are in cli.h and docs/cli.md. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tools/theater/cli.h"

struct command {
	const char *name;
	int (*fn)(struct cli *c, int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{"ps", cmd_ps, "list actors (live ones; -a for all)"},
	{"spawn", cmd_spawn, "start an actor from a manifest (TOML or JSON file, inline, or a reference)"},
	{"inspect", cmd_inspect, "show one actor"},
	{"state", cmd_state, "print an actor's current state"},
	{"send", cmd_send, "send a message (handle-send)"},
	{"request", cmd_request, "make a request (handle-request) and print the answer"},
	{"logs", cmd_logs, "print an actor's chain; -f follows it live"},
	{"events", cmd_events, "print the lifecycle events of all actors; -f follows them"},
	{"stop", cmd_stop, "stop actors"},
	{"kill", cmd_kill, "kill actors"},
	{"rm", cmd_rm, "delete actors (their chain files are kept); -f kills live ones"},
	{"restart", cmd_restart, "restart actors (--state initial|last)"},
	{"verify", cmd_verify, "recompute every hash of an actor's chain"},
	{"replay", cmd_replay, "re-execute a run from its chain and compare"},
	{"top", cmd_top, "live table of actors: status, calls, failures, mailbox"},
	{"validate", cmd_validate, "check a manifest without spawning it"},
	{"store", cmd_store, "content store: put, ls, label"},
	{"secret", cmd_secret, "secrets: set, ls, rm"},
	{"new", cmd_new, "scaffold an actor project from a template"},
	{"cluster", cmd_cluster, "the nodes of the server's cluster and their health"},
	{"version", cmd_version, "print the client's and the server's version"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fputs("usage: theater [--url URL] [--token TOKEN] [--json] COMMAND [ARGS...]\n\n"
	      "The command-line client of theater-server.\n\nCommands:\n", f);
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
	fputs("\nEnvironment: THEATER_URL (default http://127.0.0.1:8080), THEATER_TOKEN\n"
	      "(or THEATER_TOKEN_FILE, a file holding it).\n"
	      "Exit codes: 0 ok, 1 the server refused (4xx/5xx), 2 usage, 3 cannot connect,\n"
	      "4 not found, 5 ambiguous id, 6 check failed (invalid manifest, broken chain,\n"
	      "replay diverged).\n"
	      "'theater COMMAND --help' describes a command; docs/cli.md has them all.\n", f);
}

/* The token in THEATER_TOKEN_FILE (as theater-server reads it): the first
 * line, without surrounding blanks. 0, or -1 after a message. */
static int read_token_file(const char *path, char *out, size_t n)
{
	FILE *f = fopen(path, "r");
	if (!f || !fgets(out, (int)n, f)) {
		fprintf(stderr, "theater: cannot read the token file '%s' (THEATER_TOKEN_FILE): %s\n",
			path, f ? "it is empty" : strerror(errno));
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	size_t len = strcspn(out, "\r\n");
	while (len && (out[len - 1] == ' ' || out[len - 1] == '\t'))
		len--;
	out[len] = '\0';
	size_t lead = strspn(out, " \t");
	memmove(out, out + lead, len - lead + 1);
	return 0;
}

/* Global options before the command; returns the index of the command or -1
 * after printing, with *rc set. */
static int globals(struct cli *c, int argc, char **argv, int *rc)
{
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--json")) {
			c->json = 1;
		} else if ((!strcmp(a, "--url") || !strcmp(a, "--token")) && i + 1 < argc) {
			*(a[2] == 'u' ? &c->url : &c->token) = argv[++i];
		} else if (!strncmp(a, "--url=", 6)) {
			c->url = a + 6;
		} else if (!strncmp(a, "--token=", 8)) {
			c->token = a + 8;
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			usage(stdout);
			*rc = EXIT_OK;
			return -1;
		} else if (!strcmp(a, "--version")) {
			printf("theater %s\n", THEATER_VERSION);
			*rc = EXIT_OK;
			return -1;
		} else {
			fprintf(stderr, "theater: unknown option '%s'\n", a);
			*rc = EXIT_USAGE;
			return -1;
		}
	}
	if (i == argc) {
		usage(stderr);
		*rc = EXIT_USAGE;
		return -1;
	}
	return i;
}

int main(int argc, char **argv)
{
	struct cli c = {0};
	int rc = EXIT_OK;
	c.url = getenv("THEATER_URL");
	if (!c.url || !*c.url)
		c.url = "http://127.0.0.1:8080";
	c.token = getenv("THEATER_TOKEN");
	int i = globals(&c, argc, argv, &rc);
	if (i < 0)
		return rc;
	char file_token[512];
	const char *tf = getenv("THEATER_TOKEN_FILE");
	if ((!c.token || !*c.token) && tf && *tf) {
		if (read_token_file(tf, file_token, sizeof(file_token)))
			return EXIT_USAGE;
		c.token = file_token;
	}
	if (!strcmp(argv[i], "help")) {
		usage(stdout);
		return EXIT_OK;
	}
	for (size_t k = 0; k < NCOMMANDS; k++) {
		if (strcmp(commands[k].name, argv[i]) != 0)
			continue;
		c.cmd = commands[k].name;
		rc = commands[k].fn(&c, argc - i, argv + i);
		client_free(c.cl);
		fflush(stdout);
		return rc;
	}
	fprintf(stderr, "theater: unknown command '%s' (see 'theater --help')\n", argv[i]);
	return EXIT_USAGE;
}
