/*
 * Remote calls from C (tests/c_programs.rs starts the Rust node PEER_NODE, examples/echo_peer.rs,
 * as a separate OS process): snow_call gets a function's value (from outside any process and from
 * a process), an exit reason, a refusal of a function the node does not allow, a timeout (and the
 * function's process is killed), and an abandoned call when its caller exits (killed too);
 * snow_cast starts a function that reports back with a message. A local-only node, a call to this
 * node itself and bad arguments are refused with a status. Every completion's error must equal
 * snow_last_error() inside the callback. Prints one line per step; exits 1 on the first surprise.
 */
#include "harness.h"

static queue q;
static snow_node *node;
static snow_encoder *enc;
static const char *peer;

/* snow_done_fn: checks the thread-local last error against the completion's, then queues it. */
static void on_call_done(void *ctx, const snow_completion *c) {
    if (c->error && strcmp(snow_last_error(), c->error) != 0)
        FAIL("in the callback, snow_last_error() is \"%s\", the completion's error \"%s\"", snow_last_error(),
             c->error);
    on_done(ctx, c);
}

static void expect_status(snow_status got, snow_status want, const char *what) {
    if (got != want) FAIL("%s: status %d, expected %d (%s)", what, (int)got, (int)want, snow_last_error());
}

/* Calls `function` on PEER_NODE with the arguments in `enc` for `process`, and waits for the
 * completion, which must have status `want`. */
static item *call(uint64_t process, const char *function, uint32_t timeout_ms, snow_status want) {
    const uint8_t *args;
    size_t len;
    encoded(enc, &args, &len);
    CHECK(snow_call(node, process, peer, function, strlen(function), args, len, timeout_ms, on_call_done,
                    pending_for(&q, function)));
    item *it = expect_done_of(&q, function);
    if (it->status != want) FAIL("call of %s: status %d, expected %d: %s", function, (int)it->status, (int)want, it->error);
    return it;
}

/* The pid in a message {:sleeping, pid}. */
static snow_pid sleeper_in(const item *it) {
    snow_decoder *d;
    snow_item part;
    CHECK(snow_decoder_new(it->message, it->message_len, &d));
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_TUPLE || part.count != 2) FAIL("not {:sleeping, pid}: %s", text_of(it->message, it->message_len));
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_ATOM || part.text_len != 8 || memcmp(part.text, "sleeping", 8) != 0) FAIL("not :sleeping");
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_PID) FAIL("not a pid after :sleeping");
    snow_pid pid = part.pid;
    snow_decoder_free(d);
    return pid;
}

/* The next two items, in either order: the completion tagged `tag` and an event. */
static void done_and_event(const char *tag, item **done, item **event) {
    *done = *event = NULL;
    for (int i = 0; i < 2; i++) {
        item *it = queue_pop(&q, WAIT_MS);
        if (!it) FAIL("waiting for %s's completion and an event: nothing within %d ms", tag, WAIT_MS);
        if (it->kind == ITEM_DONE && !*done && strcmp(it->tag, tag) == 0) *done = it;
        else if (it->kind == ITEM_EVENT && !*event) *event = it;
        else FAIL("waiting for %s's completion and an event, got kind %d", tag, it->kind);
    }
}

/* Starts `sleep` [to, 30000] for process `caller` with `timeout_ms`; the function tells `to` its
 * pid, which process `watcher` monitors. Returns the monitor's reference. */
static snow_ref start_sleeper(uint64_t caller, const snow_pid *to, uint64_t watcher, uint32_t timeout_ms,
                              const char *tag) {
    const uint8_t *args;
    size_t len;
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 2));
    CHECK(snow_encode_pid(enc, to));
    CHECK(snow_encode_int(enc, 30000));
    encoded(enc, &args, &len);
    CHECK(snow_call(node, caller, peer, "sleep", 5, args, len, timeout_ms, on_call_done, pending_for(&q, tag)));
    item *it = expect_message_in(&q, "{:sleeping, pid}");
    snow_pid sleeper = sleeper_in(it);
    free_item(it);
    snow_ref watch;
    CHECK(snow_monitor(node, watcher, &sleeper, &watch));
    return watch;
}

/* The completion `tag` with `want`, and the :DOWN of monitor `watch` with reason :killed. */
static void ended_and_killed(const char *tag, snow_status want, const snow_ref *watch, const char *line) {
    item *done, *down;
    done_and_event(tag, &done, &down);
    if (done->status != want) FAIL("%s: status %d, expected %d: %s", tag, (int)done->status, (int)want, done->error);
    if (down->event != SNOW_EVENT_DOWN || !down->has_ref || !same_ref(&down->ref, watch))
        FAIL("%s: expected the :DOWN of the function's process, got event %u", tag, down->event);
    printf("%s %s\n", line, done->error);
    printf("%s_DOWN %s\n", line, text_of(down->reason, down->reason_len));
    free_item(done);
    free_item(down);
}

/* A local-only node cannot call. */
static void local_only_node_refuses(void) {
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    snow_node *local;
    const uint8_t *args;
    size_t len;
    CHECK(snow_node_start(NULL, 0, &callbacks, &local));
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 0));
    encoded(enc, &args, &len);
    expect_status(snow_call(local, 0, "x@127.0.0.1", "add", 3, args, len, 1000, on_call_done, NULL),
                  SNOW_ERR_NOT_DISTRIBUTED, "a call from a local-only node");
    printf("NOT_DISTRIBUTED %s\n", snow_last_error());
    CHECK(snow_node_stop(local, on_done, pending_for(&q, "stop local")));
    item *it = expect_done_of(&q, "stop local");
    free_item(it);
    snow_node_free(local);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snow_log_from_env();
    queue_init(&q);
    enc = snow_encoder_new();
    local_only_node_refuses();

    peer = env("PEER_NODE");
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    CHECK(snow_node_start_env(&callbacks, &node));
    snow_pid me, other;
    CHECK(snow_process_new(node, 1, &me));
    CHECK(snow_process_new(node, 2, &other));
    const uint8_t *data;
    size_t len;

    /* A value, from outside any process and from a process. */
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 2));
    CHECK(snow_encode_int(enc, 2));
    CHECK(snow_encode_int(enc, 3));
    item *it = call(0, "add", 5000, SNOW_OK);
    printf("CALL_OK %s\n", text_of(it->reason, it->reason_len));
    free_item(it);
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 2));
    CHECK(snow_encode_int(enc, 40));
    CHECK(snow_encode_int(enc, 2));
    it = call(me.id, "add", 5000, SNOW_OK);
    printf("CALL_OK %s\n", text_of(it->reason, it->reason_len));
    free_item(it);

    /* The function exits instead of returning: its reason. */
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 1));
    CHECK(snow_encode_string(enc, "x", 1));
    it = call(me.id, "add", 5000, SNOW_ERR_EXIT);
    printf("CALL_EXIT %s\n", text_of(it->reason, it->reason_len));
    printf("CALL_EXIT_ERROR %s\n", it->error);
    free_item(it);

    /* A function the node does not allow. */
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 0));
    it = call(me.id, "nope", 5000, SNOW_ERR_REFUSED);
    printf("CALL_REFUSED %s\n", text_of(it->reason, it->reason_len));
    free_item(it);

    /* A function that sleeps past the timeout: SNOW_ERR_TIMEOUT, and its process is killed. */
    snow_ref watch = start_sleeper(me.id, &me, me.id, 3000, "sleep");
    ended_and_killed("sleep", SNOW_ERR_TIMEOUT, &watch, "CALL_TIMEOUT");

    /* A caller that exits while it waits abandons its call: the function's process is killed. */
    watch = start_sleeper(other.id, &other, me.id, 20000, "abandoned");
    encode_atom_term(enc, "normal");
    encoded(enc, &data, &len);
    CHECK(snow_process_exit(node, other.id, data, len));
    ended_and_killed("abandoned", SNOW_ERR_NO_PROCESS, &watch, "CALLER_EXITED");

    /* A cast: the function reports back with a message. */
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 2));
    CHECK(snow_encode_pid(enc, &me));
    CHECK(snow_encode_string(enc, "hi", 2));
    encoded(enc, &data, &len);
    CHECK(snow_cast(node, me.id, peer, "notify", 6, data, len, on_call_done, pending_for(&q, "cast")));
    item *done, *msg;
    done_and_event("cast", &done, &msg);
    if (done->status != SNOW_OK) FAIL("cast: %d %s", (int)done->status, done->error);
    if (msg->event != SNOW_EVENT_MESSAGE || msg->token != 1) FAIL("cast: expected a message for me");
    printf("CAST %s\n", text_of(msg->message, msg->message_len));
    free_item(done);
    free_item(msg);

    /* This node itself: a cast goes to its spawn callback (none here: refused), a call is refused. */
    const char *self = snow_node_name(node);
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 0));
    encoded(enc, &data, &len);
    CHECK(snow_cast(node, 0, self, "anything", 8, data, len, on_call_done, pending_for(&q, "self cast")));
    it = expect_done_of(&q, "self cast");
    if (it->status != SNOW_ERR_REFUSED) FAIL("self cast: status %d, expected SNOW_ERR_REFUSED", (int)it->status);
    printf("SELF_CAST %s\n", text_of(it->reason, it->reason_len));
    free_item(it);
    expect_status(snow_call(node, 0, self, "anything", 8, data, len, 1000, on_call_done, NULL),
                  SNOW_ERR_UNSUPPORTED, "a call to this node");
    printf("SELF_CALL %s\n", snow_last_error());

    /* Bad arguments: a status at once, and no completion. */
    encode_atom_term(enc, "not_a_list");
    encoded(enc, &data, &len);
    expect_status(snow_call(node, me.id, peer, "add", 3, data, len, 1000, on_call_done, NULL),
                  SNOW_ERR_BAD_TERM, "args that are not a list");
    printf("BAD_ARGS %s\n", snow_last_error());
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_list(enc, 0));
    encoded(enc, &data, &len);
    expect_status(snow_call(node, me.id, peer, "add", 3, data, len, 1000, NULL, NULL), SNOW_ERR_ARGUMENT, "no done");
    expect_status(snow_call(node, other.id, peer, "add", 3, data, len, 1000, on_call_done, NULL), SNOW_ERR_NO_PROCESS,
                  "a call from a process that exited");
    it = queue_pop(&q, 200);
    if (it) FAIL("a refused request completed: kind %d", it->kind);

    CHECK(snow_node_stop(node, on_done, pending_for(&q, "stop")));
    it = expect_done_of(&q, "stop");
    if (it->status != SNOW_OK) FAIL("stop: %d %s", (int)it->status, it->error);
    free_item(it);
    encode_atom_term(enc, "normal");
    encoded(enc, &data, &len);
    CHECK(snow_process_exit(node, me.id, data, len));
    snow_encoder_free(enc);
    snow_node_free(node);
    printf("DONE\n");
    return 0;
}
