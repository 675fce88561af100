/* replay.c - POST /actors/{id}/replay: re-executes a run from its chain and
 * answers how far it went the same way (supervisor/replay.h). The replay runs
 * on the supervisor's worker pool; the connection waits suspended. */
#include "api/api_int.h"

#include "src/util/crypto.h"
#include "supervisor/replay.h"

static void replayed(void *user, enum err_code rc, const struct err *err, const json_t *answer)
{
	struct api_call *c = user;
	if (rc) {
		api_problem(c, rc, err ? err->msg : NULL);
		return;
	}
	api_json(c, 200, json_deep_copy(answer));
}

void h_actor_replay(struct api_call *c)
{
	if (!uuid_valid(c->params[0])) {
		api_problem(c, ERR_BAD_ID, "not an actor id (a lowercase uuid)");
		return;
	}
	supervisor_replay(c->api->cfg.sup, c->params[0], replayed, c);
}
