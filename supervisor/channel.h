/* channel.h - private to the supervisor layer: deferred requests, streamed
 * answers and timers (docs/actor-abi.md, "Deferred and streamed answers" and
 * "Timers").
 *
 * A request is answered by the output of the handle-request call that took it,
 * unless that call defers it (defer-request): then any later call answers it
 * with respond-to-request (or fail-request), and chunks of the answer may be
 * sent before (send-chunk, or a send-http relay). A request is known by its id:
 * the seq of its `message-server/received` event.
 *
 * Three files share this header: runtime.c (the reply of a request, the call in
 * progress, the timer mail kind), host_channel.c (the deferred requests of an
 * instance, a->chan, and the host functions) and timers.c (a->timers and the
 * timing host functions set-timer / cancel-timer).
 *
 * Threads and locks: a->chan and a->timers are guarded by a->lock. The
 * runtime_current_* / runtime_defer_current functions are for the thread that
 * runs the actor's call; the others may be called from any thread.
 */
#ifndef THEATER_SUPERVISOR_CHANNEL_H
#define THEATER_SUPERVISOR_CHANNEL_H

#include "supervisor/supervisor_int.h"

struct reply;

/* ---- runtime.c ---- */

/* The reply of the request the call in progress (or parked) handles, and its
 * id; NULL when the call is not a handle-request or its request was deferred.
 * a->lock held, or the thread that runs the call. */
struct reply *runtime_current_reply(struct actor *a, uint64_t *id_out);
/* The id of the request the call in progress handles, also when it has no
 * client (redelivered after a restart) or was deferred; 0 when the call is not
 * a handle-request. a->lock held, or the thread that runs the call. */
uint64_t runtime_current_request(struct actor *a);
/* Takes the current request away from the call (its output no longer answers
 * it): the caller owns one reference of the reply, which it gives back with
 * runtime_reply_send. NULL when there is none. a->lock held. */
struct reply *runtime_defer_current(struct actor *a, uint64_t *id_out);
/* Answers r (unless it was answered already: the client's wait ran out) and
 * drops the caller's reference. 1 when the answer was delivered. */
int runtime_reply_send(struct supervisor *s, struct actor *a, struct reply *r, enum err_code rc,
		       const struct err *err, const uint8_t *data, size_t len);
/* Hands a chunk to r's client (a->lock held, which keeps r alive and
 * unanswered; the client's callback must not call back into the supervisor):
 * 1 when one streams it, 0 when nobody listens (answered already, or a client
 * that takes whole answers only). */
int runtime_reply_chunk_locked(struct reply *r, const uint8_t *data, size_t len);
/* 1 while r's client still waits for the answer. */
int runtime_reply_waiting(struct actor *a, struct reply *r);
int runtime_reply_waiting_locked(struct reply *r);      /* a->lock held */
/* Accepts a timer tick (mail of kind "timer", recorded in the chain, delivered
 * to handle-timer). ERR_BUSY when the mailbox is full, ERR_CONFLICT when a is
 * not running. */
enum err_code runtime_deliver_tick(struct supervisor *s, const char *actor_id, const void *data,
				   size_t len, struct err *err);
/* 1 when the instance exports handle-timer. */
int runtime_has_timer_export(struct actor *a);
/* Channels between actors (host_channel.c calls these): the open, a request
 * answered by the target's handle-channel-open (mail of kind channel-open), and
 * a message or close notice (mail of kind channel-message / channel-close; a
 * close takes no place in the mailbox's limits). data is the JSON envelope the
 * receiving export gets. */
enum err_code runtime_channel_open(struct supervisor *s, const char *to, const char *from,
				   const void *data, size_t len, uint32_t timeout_ms,
				   supervisor_reply_fn reply, void *user, struct err *err);
enum err_code runtime_channel_deliver(struct supervisor *s, const char *to, const char *from,
				      int close, const void *data, size_t len, struct err *err);

/* ---- host_channel.c ---- */

/* 1 when calls have answered deferred requests whose answers wait for the call
 * to be recorded (channel_flush delivers them). */
int channel_has_answers(struct actor *a);
/* How many deferred requests wait for an answer plus how many channel ends a
 * holds: what an idle release must not drop (a->lock taken). */
size_t channel_count(struct actor *a);
/* Delivers those answers; after the call's events are durable. */
void channel_flush(struct supervisor *s, struct actor *a);
/* The instance goes: every deferred request gets e as its answer, and the peer
 * of each of its channels gets a channel-close notice (reason "ended"). */
void channel_drop_all(struct supervisor *s, struct actor *a, const struct err *e);

/* The runtime, before a channel-message or channel-close mail (its envelope in
 * data) is delivered: 1 when a still holds the channel (a close also takes it
 * out of a's table), 0 when a closed it itself (the mail is dropped). */
int channel_mail_check(struct actor *a, int close, const uint8_t *data, size_t len);
/* The runtime, when handle-channel-open accepted (envelope in data): a holds
 * its end from now on. ERR_BUSY (and e) when a holds too many channels. */
enum err_code channel_accept(struct supervisor *s, struct actor *a, const uint8_t *data,
			     size_t len, struct err *e);

/* Sends a chunk to the client of request id (0: the one the call in progress
 * handles): 1 sent, 0 nobody streams it, -1 no such request waits. With data
 * NULL only looks the request up. *id_out (may be NULL): its id. Any thread. */
int channel_chunk(struct actor *a, uint64_t id, const uint8_t *data, size_t len,
		  uint64_t *id_out);

/* The send-http relay: a request's "relay" member asks the host to send, while
 * the response arrives, each server-sent event `data:` line's string at a JSON
 * pointer as a chunk of one of the actor's requests. The transfer feeds it on
 * the fetcher's thread while the call is parked; the call's finish records the
 * chunks it sent (`message-server/chunk` events) on the actor's own thread.
 * Two owners: the send-http call (channel_relay_free) and the transfer (its
 * last feed, with NULL). */
struct channel_relay;
/* Parses relay (a JSON object, borrowed) for a, on the call's thread: NULL and
 * 0 when absent, a new relay and 0, or NULL and a negative host result with e
 * set. */
int32_t channel_relay_new(struct actor *a, const json_t *relay, struct channel_relay **out,
			  struct err *e);
/* A secret the request used (call's thread, before the transfer starts): its
 * value (copied; at least 4 bytes, else ignored) is replaced by
 * "[secret:NAME]" in the chunks, as send-http scrubs its response. A value split
 * across two lines is caught too: the last (longest secret - 1) bytes of each
 * line's text wait for the next line (or the response's end). At most 8. */
void channel_relay_secret(struct channel_relay *r, const char *name, const uint8_t *value,
			  size_t len);
/* fetch's on_data: body bytes as they arrive; (NULL, 0) when the transfer is
 * over (drops the transfer's reference). Returns 0. */
int channel_relay_feed(void *relay, const uint8_t *data, size_t len);
/* On the call's thread, when send-http finishes: sends what was held back,
 * records the chunks sent as events and answers how many; nothing is relayed
 * after it (a transfer that goes on past a timeout sends no more). */
size_t channel_relay_record(struct channel_relay *r);
/* Drops the call's reference. Accepts NULL. */
void channel_relay_free(struct channel_relay *r);

/* ---- timers.c ---- */

/* The instance goes (stop, fail, server stop): its timers are dropped. */
void timers_drop_all(struct actor *a);
/* Recovery: re-arms the timers the chain records for a (they survive a server
 * restart) and adds them as "timers" to the data of its `recovered` event. */
enum err_code timers_recover(struct supervisor *s, struct actor *a, json_t *recovered,
			     struct err *err);
/* THEATER_TEST_TICK_STALL_MS (tests only, warned at start): each timer's
 * first tick waits that long between being counted and reaching the mailbox,
 * as a job the machine left behind would. 0 without it. */
unsigned timers_test_stall(void);
/* Arms the recovered timers (after the `recovered` event is recorded). */
void timers_arm_all(struct supervisor *s, struct actor *a);
/* After a call (the runtime): records the table again (`timing/timers`) when
 * the actor has timers and 1024 events went by since it was last recorded, so
 * that recovery never reads further back than that. */
void timers_checkpoint(struct supervisor *s, struct actor *a);
/* How many timers a has set (0 without an instance). */
size_t timers_count(struct actor *a);

#endif
