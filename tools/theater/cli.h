/* cli.h - what the commands of the theater CLI share: the context, exit codes,
 * option parsing, calls that turn answers into exit codes, and partial ids.
 *
 * Every command is `int cmd_x(struct cli *c, int argc, char **argv)`
 * (argv[0] is the command name) returning one of the exit codes below, with
 * its normal output on stdout and every message on stderr.
 * Threads: single-threaded.
 */
#ifndef THEATER_CLI_CLI_H
#define THEATER_CLI_CLI_H

#include <stddef.h>

#include "src/util/json.h"
#include "tools/theater/client.h"

/* Exit codes (docs/cli.md); stable, scripts depend on them. */
enum cli_exit {
	EXIT_OK = 0,
	EXIT_REFUSED = 1,     /* the server answered 4xx/5xx (other than 404) */
	EXIT_USAGE = 2,       /* bad command line, or a local file that cannot be read/written */
	EXIT_CONNECT = 3,     /* cannot reach the server, or the transfer broke or timed out */
	EXIT_NOT_FOUND = 4,   /* 404, or no actor matches the id, prefix or name */
	EXIT_AMBIGUOUS = 5,   /* an id prefix or name matches more than one actor */
	EXIT_CHECK = 6,       /* the answer says no: invalid manifest, broken chain, replay diverged */
};

struct cli {
	const char *url;
	const char *token;
	int json;              /* --json: print the server's JSON */
	struct client *cl;     /* created on first use */
	const char *cmd;       /* "ps", "store put", ... (for messages) */
};

/* One option of a command. has_arg: the value goes to *sval; otherwise *flag
 * is set to 1. Lists end with {0}. */
struct cli_opt {
	const char *lng;       /* "wait" for --wait */
	char shrt;             /* 'w' for -w, or 0 */
	int has_arg;
	const char **sval;
	int *flag;
};

/* Parses argv[1..] against opts plus the common --json, --url, --token and
 * --help. Positionals go to pos (at most max_pos; more is a usage error).
 * Returns -1 to go on, or an exit code: 0 after printing help for --help,
 * EXIT_USAGE after a message. */
int cli_parse(struct cli *c, int argc, char **argv, const struct cli_opt *opts,
	      const char *help, char **pos, int min_pos, int max_pos, int *npos);

/* Prints "theater <cmd>: <msg>" and a pointer to --help; returns EXIT_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints "theater: <msg>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The client, created on first use; NULL after a message. */
struct client *cli_client(struct cli *c);

/* Sends "Idempotency-Key: key" with the calls that follow (key NULL: none);
 * the server then answers a repeated spawn, message or request with the
 * first outcome instead of doing it twice. 0, or an exit code after a
 * message. */
int cli_idempotency(struct cli *c, const char *key);

/* Performs a call; on a transport error prints it and returns EXIT_CONNECT;
 * otherwise 0 (any status; the reply is in out, release it). */
int cli_do(struct cli *c, const char *method, const char *path, const char *ctype,
	   const void *body, size_t len, struct client_reply *out);

/* Prints the problem (detail and code) of a 4xx/5xx reply on stderr and
 * returns its exit code (EXIT_NOT_FOUND for 404, else EXIT_REFUSED). */
int cli_problem(struct cli *c, const struct client_reply *r);

/* cli_do + status check + JSON parse: 0 with *out (new reference; json null
 * for an empty 2xx body), or the exit code after a message. status_out may be
 * NULL. */
int cli_json(struct cli *c, const char *method, const char *path, const char *ctype,
	     const void *body, size_t len, json_t **out, long *status_out);

/* Resolves what the user typed (a full id, a unique id prefix, or an actor's
 * name) to a full id. 0, or EXIT_NOT_FOUND / EXIT_AMBIGUOUS / ... after a
 * message. */
int cli_resolve(struct cli *c, const char *arg, char id_out[37]);

/* Every run GET /actors lists (all pages; query: extra "k=v&..." or NULL)
 * into a new array *out; 0, or an exit code after a message. */
int cli_list_all(struct cli *c, const char *query, json_t **out);

/* The string member k of o, or NULL (o may be NULL or not an object). */
const char *cli_str(const json_t *o, const char *k);

/* Prints v as indented JSON (a newline after). */
void cli_print_json(const json_t *v);

/* Reads a whole file ("-" is stdin) into a malloc'd NUL-terminated buffer;
 * NULL after a message. */
char *cli_read_file(const char *path, size_t *len_out);

/* Commands (cmd_*.c). */
int cmd_ps(struct cli *c, int argc, char **argv);
int cmd_spawn(struct cli *c, int argc, char **argv);
int cmd_inspect(struct cli *c, int argc, char **argv);
int cmd_state(struct cli *c, int argc, char **argv);
int cmd_send(struct cli *c, int argc, char **argv);
int cmd_request(struct cli *c, int argc, char **argv);
int cmd_stop(struct cli *c, int argc, char **argv);
int cmd_kill(struct cli *c, int argc, char **argv);
int cmd_rm(struct cli *c, int argc, char **argv);
int cmd_restart(struct cli *c, int argc, char **argv);
int cmd_verify(struct cli *c, int argc, char **argv);
int cmd_replay(struct cli *c, int argc, char **argv);
int cmd_logs(struct cli *c, int argc, char **argv);
int cmd_events(struct cli *c, int argc, char **argv);
int cmd_top(struct cli *c, int argc, char **argv);
int cmd_validate(struct cli *c, int argc, char **argv);
int cmd_store(struct cli *c, int argc, char **argv);
int cmd_secret(struct cli *c, int argc, char **argv);
int cmd_new(struct cli *c, int argc, char **argv);
int cmd_version(struct cli *c, int argc, char **argv);
int cmd_cluster(struct cli *c, int argc, char **argv);

#endif
