/* host_env.c - theater:simple/environment: the secrets an actor was granted.
 *
 * The reference's environment handler reads the host process's environment
 * variables. Ours reads the server's secrets (src/secrets.h) instead: the
 * server's own environment is none of an actor's business, and secrets are
 * what agents need (API keys). The handler's settings keep the reference's
 * names and meaning:
 *   allowed_vars      names the actor may read;
 *   allowed_prefixes  or any name with one of these prefixes;
 *   denied_vars       never these, whatever the two above say;
 *   allow_list_all    list-vars lists every secret name (names only).
 * permission_policy.environment may disallow the capability or restrict it
 * with the same keys (a name must pass both).
 *
 * Functions (docs/actor-abi.md):
 *   get-var(name_ptr, name_len, out) -> len   the value; -2 not set, -3 not granted
 *   exists(name_ptr, name_len) -> 1 | 0       -3 not granted
 *   list-vars(out) -> len                     a JSON array of names
 * The chain records the name and the value's fingerprint (HMAC-SHA256 under
 * the server's key), never the value. A value an actor got this way is in its
 * memory: if the actor writes it into its state or a message, it is recorded
 * there. Header templates (host_http.c) keep it out of the actor entirely and
 * are the better way to use a key.
 */
#include <stdlib.h>
#include <string.h>

#include "src/secrets.h"
#include "supervisor/host.h"

#define MOD "theater:simple/environment"

static int in_list(const json_t *list, const char *name)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v) {
		const char *s = json_string_value(v);
		if (s && strcmp(s, name) == 0)
			return 1;
	}
	return 0;
}

static int has_prefix(const json_t *list, const char *name)
{
	size_t i;
	const json_t *v;
	json_array_foreach(list, i, v) {
		const char *s = json_string_value(v);
		if (s && strncmp(name, s, strlen(s)) == 0)
			return 1;
	}
	return 0;
}

/* One layer of settings: denied wins; then allowed by name or prefix. With
 * open = 1 a layer that lists no allowed names or prefixes allows all. */
static int layer_allows(const json_t *cfg, const char *name, int open)
{
	const json_t *allowed = json_object_get(cfg, "allowed_vars");
	const json_t *prefixes = json_object_get(cfg, "allowed_prefixes");
	if (in_list(json_object_get(cfg, "denied_vars"), name))
		return 0;
	if (open && !allowed && !prefixes)
		return 1;
	return in_list(allowed, name) || has_prefix(prefixes, name);
}

int host_env_granted(struct actor *a, const char *name)
{
	const json_t *pol = NULL;
	if (!(host_actor_grants(a) & GRANT_ENV))
		return 0;
	enum host_policy p = host_policy(a, GRANT_ENV, &pol);
	if (p == HOST_POLICY_DISALLOW)
		return 0;
	if (!layer_allows(host_handler_config(a, GRANT_ENV), name, 0))
		return 0;
	return p != HOST_POLICY_RESTRICT || layer_allows(pol, name, 1);
}

int host_env_child_allowed(struct actor *a, const json_t *child, struct err *e)
{
	const json_t *mine = host_handler_config(a, GRANT_ENV);
	size_t i;
	const json_t *v;
	if (json_is_true(json_object_get(child, "allow_list_all")) &&
	    !json_is_true(json_object_get(mine, "allow_list_all"))) {
		err_set(e, ERR_FORBIDDEN_PATH, "the child's environment asks for allow_list_all, "
			"which this actor was not granted");
		return 0;
	}
	json_array_foreach(json_object_get(child, "allowed_vars"), i, v)
		if (json_string_value(v) && !host_env_granted(a, json_string_value(v))) {
			err_set(e, ERR_FORBIDDEN_PATH, "the child's environment asks for '%s', which "
				"this actor was not granted", json_string_value(v));
			return 0;
		}
	json_array_foreach(json_object_get(child, "allowed_prefixes"), i, v) {
		const char *p = json_string_value(v);
		if (p && !has_prefix(json_object_get(mine, "allowed_prefixes"), p)) {
			err_set(e, ERR_FORBIDDEN_PATH, "the child's environment asks for the prefix "
				"'%s', which this actor was not granted", p);
			return 0;
		}
	}
	return 1;
}

/* Reads the name argument; 0 or a negative result with k->e set. */
static int32_t read_name(struct host_call *k, struct wasm_caller *c, uint32_t ptr, uint32_t len,
			 char **name)
{
	int32_t rc = host_read(c, ptr, len, SECRETS_NAME_MAX, (uint8_t **)name);
	if (rc) {
		err_set(&k->e, ERR_INVALID, rc == HOST_ETOOBIG ? "a name is at most 128 bytes"
			: "the name is outside the memory");
		return rc == HOST_ETOOBIG ? HOST_EINVAL : rc;
	}
	json_object_set_new(k->in, "name", json_stringn(*name, len));
	if (!secrets_name_valid(*name)) {
		err_set(&k->e, ERR_INVALID, "'%.64s' is not a valid secret name", *name);
		return HOST_EINVAL;
	}
	return 0;
}

static int32_t check_granted(struct host_call *k, struct actor *a, const char *name)
{
	if (host_env_granted(a, name))
		return 0;
	err_set(&k->e, ERR_FORBIDDEN_PATH, "'%s' is not granted by the environment handler "
		"(allowed_vars, allowed_prefixes, denied_vars, permission_policy.environment)",
		name);
	return HOST_EDENIED;
}

static int32_t no_secrets(struct host_call *k)
{
	err_set(&k->e, ERR_UNAVAILABLE, "this server keeps no secrets");
	return HOST_EFAILED;
}

static enum err_code e_get(struct wasm_caller *c, void *user, const struct wasm_value *args,
			   struct wasm_value *results, struct err *err)
{
	struct host_call k;
	char *name = NULL;
	uint8_t *value = NULL;
	size_t len = 0;
	struct secret_info info;
	if (host_disallowed(user, GRANT_ENV, MOD, "get-var", results, 0))
		return ERR_OK;
	host_call_init(&k);
	if (!(k.rc = read_name(&k, c, args[0].of.i32, args[1].of.i32, &name)) &&
	    !(k.rc = check_granted(&k, user, name))) {
		if (!host_secrets(user))
			k.rc = no_secrets(&k);
		else if (secrets_get(host_secrets(user), name, &value, &len, &info, &k.e))
			k.rc = host_errno(k.e.code);
		else
			k.rc = host_return_bytes(c, user, args[2].of.i32, value, len);
		if (value)
			json_object_set_new(k.out, "fingerprint", json_string(info.fingerprint));
	}
	secrets_value_free(value, len);
	free(name);
	host_call_end(&k, user, MOD, "get-var", results);
	return ERR_OK;
}

static enum err_code e_exists(struct wasm_caller *c, void *user, const struct wasm_value *args,
			      struct wasm_value *results, struct err *err)
{
	struct host_call k;
	char *name = NULL;
	struct secret_info info;
	struct err ignore = {0};
	if (host_disallowed(user, GRANT_ENV, MOD, "exists", results, 0))
		return ERR_OK;
	host_call_init(&k);
	if (!(k.rc = read_name(&k, c, args[0].of.i32, args[1].of.i32, &name)) &&
	    !(k.rc = check_granted(&k, user, name)))
		k.rc = host_secrets(user) &&
		       secrets_info(host_secrets(user), name, &info, &ignore) == ERR_OK;
	free(name);
	host_call_end(&k, user, MOD, "exists", results);
	return ERR_OK;
}

struct list_ctx {
	struct actor *a;
	json_t *names;
	int all;
};

static void list_one(void *user, const struct secret_info *info)
{
	struct list_ctx *l = user;
	if (l->all || host_env_granted(l->a, info->name))
		json_array_append_new(l->names, json_string(info->name));
}

static enum err_code e_list(struct wasm_caller *c, void *user, const struct wasm_value *args,
			    struct wasm_value *results, struct err *err)
{
	struct host_call k;
	struct list_ctx l = {.a = user, .names = json_array()};
	const json_t *pol = NULL;
	if (host_disallowed(user, GRANT_ENV, MOD, "list-vars", results, 0)) {
		json_decref(l.names);
		return ERR_OK;
	}
	host_call_init(&k);
	l.all = json_is_true(json_object_get(host_handler_config(user, GRANT_ENV),
					     "allow_list_all")) &&
		(host_policy(user, GRANT_ENV, &pol) != HOST_POLICY_RESTRICT ||
		 json_is_true(json_object_get(pol, "allow_list_all")));
	if (!host_secrets(user))
		k.rc = no_secrets(&k);
	else if (secrets_foreach(host_secrets(user), list_one, &l, &k.e))
		k.rc = host_errno(k.e.code);
	char *text = k.rc ? NULL : json_compact(l.names);
	if (!k.rc)
		k.rc = text ? host_return_bytes(c, user, args[0].of.i32, text, strlen(text))
			    : HOST_EFAILED;
	if (k.rc >= 0)
		json_object_set(k.out, "names", l.names);
	free(text);
	json_decref(l.names);
	host_call_end(&k, user, MOD, "list-vars", results);
	return ERR_OK;
}

const struct host_fn host_env_fns[] = {
	{MOD, "get-var", GRANT_ENV, 3, 1, {WASM_I32, WASM_I32, WASM_I32}, {WASM_I32}, e_get},
	{MOD, "exists", GRANT_ENV, 2, 1, {WASM_I32, WASM_I32}, {WASM_I32}, e_exists},
	{MOD, "list-vars", GRANT_ENV, 1, 1, {WASM_I32}, {WASM_I32}, e_list},
	{NULL, NULL, 0, 0, 0, {0}, {0}, NULL},
};
