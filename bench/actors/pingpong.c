/* pingpong - the actor of the actor-to-actor messaging benchmark.
 *
 * Two of them pass a number back and forth with
 * theater:simple/message-server-host send: a message "n" with n > 0 sends
 * "n-1" to the peer; "0" ends the rally. The request "peer <id>" sets the
 * peer (kept in the state as {"peer": "<id>"}). The state does not change
 * while the rally runs, so what is measured is the messaging and its chain
 * records (the sender's send event, the receiver's handle-send event).
 */
#define THEATER_ACTOR_IMPL
#include "theater/actor.h"

#include "theater/libc.h"

#define ID_LEN 36

/* The peer id inside the state {"peer":"<36>"}; 0 when there is none. */
static const char *peer_of(const char *state, uint32_t len)
{
	return len == 9 + ID_LEN + 2 ? state + 9 : 0;
}

THEATER_EXPORT("init")
struct theater_result *init(const char *state, uint32_t len)
{
	return theater_ok(state, len, 0, 0);
}

THEATER_EXPORT("handle-request")
struct theater_result *handle_request(const char *state, uint32_t len, const char *req,
				      uint32_t req_len)
{
	if (req_len != 5 + ID_LEN || memcmp(req, "peer ", 5) != 0)
		return theater_error(state, len, "the request is \"peer <actor id>\"");
	char *st = theater_alloc(9 + ID_LEN + 2);
	if (!st)
		return theater_error(state, len, "out of memory");
	memcpy(st, "{\"peer\":\"", 9);
	memcpy(st + 9, req + 5, ID_LEN);
	memcpy(st + 9 + ID_LEN, "\"}", 2);
	return theater_ok(st, 9 + ID_LEN + 2, "ok", 2);
}

THEATER_EXPORT("handle-send")
struct theater_result *handle_send(const char *state, uint32_t len, const char *msg,
				   uint32_t msg_len)
{
	uint64_t n = 0;
	const char *peer = peer_of(state, len);
	if (!peer)
		return theater_error(state, len, "no peer yet");
	if (msg_len == 0 || msg_len > 18)
		return theater_error(state, len, "the message is a number");
	for (uint32_t i = 0; i < msg_len; i++) {
		if (msg[i] < '0' || msg[i] > '9')
			return theater_error(state, len, "the message is a number");
		n = n * 10 + (uint64_t)(msg[i] - '0');
	}
	if (n == 0)
		return theater_ok(state, len, 0, 0);
	char buf[20];
	uint32_t k = sizeof(buf);
	for (uint64_t v = n - 1;; v /= 10) {
		buf[--k] = (char)('0' + v % 10);
		if (v < 10)
			break;
	}
	int32_t rc = theater_send(peer, ID_LEN, buf + k, sizeof(buf) - k);
	if (rc < 0)
		return theater_error(state, len, "send to the peer failed");
	return theater_ok(state, len, 0, 0);
}
