/*
 * Global names from C (tests/c_programs.rs drives the Rust side): a C node connects to the test's
 * Rust node (PEER_NODE), registers, moves and withdraws global names for its processes, is sent
 * to by name from the Rust node, finds and sends to the Rust node's global name, is refused the
 * withdrawal of a name held elsewhere, and sees a name freed when its process exits. A local-only
 * node answers SNOW_ERR_NOT_DISTRIBUTED. Prints one line per step; exits 1 on the first surprise.
 */
#include "harness.h"

static queue q;
static snow_node *node;
static snow_encoder *enc;

/* An atom as an encoded term, owned by the caller (free it). */
static uint8_t *atom_name(const char *text, size_t *len) {
    const uint8_t *data;
    encode_atom_term(enc, text);
    encoded(enc, &data, len);
    return copy_bytes(data, *len);
}

/* The next item that is not a RESUME, within WAIT_MS. */
static item *next(void) {
    for (;;) {
        item *it = queue_pop(&q, WAIT_MS);
        if (!it) FAIL("nothing arrived within %d ms", WAIT_MS);
        if (it->kind == ITEM_EVENT && it->event == SNOW_EVENT_RESUME) { free_item(it); continue; }
        return it;
    }
}

/* The next message for process `token`, as text. */
static const char *next_message(uint64_t token) {
    item *it = next();
    if (it->kind != ITEM_EVENT || it->event != SNOW_EVENT_MESSAGE || it->token != token)
        FAIL("expected a message for %llu, got kind %d event %u token %llu", (unsigned long long)token, it->kind,
             it->event, (unsigned long long)it->token);
    const char *text = text_of(it->message, it->message_len);
    free_item(it);
    return text;
}

static void expect_status(snow_status got, snow_status want, const char *what) {
    if (got != want) FAIL("%s: status %d, expected %d (%s)", what, (int)got, (int)want, snow_last_error());
}

/* Waits for the completion tagged `tag`, which must be SNOW_OK. */
static void wait_done(const char *tag) {
    item *it = next();
    if (it->kind != ITEM_DONE || strcmp(it->tag, tag) != 0) FAIL("expected the completion of %s", tag);
    if (it->status != SNOW_OK) FAIL("%s: %d %s", tag, (int)it->status, it->error);
    free_item(it);
}

/* A local-only node has no global registry. */
static void local_only_node_refuses(void) {
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    snow_node *local;
    snow_pid p;
    size_t len;
    CHECK(snow_node_start(NULL, 0, &callbacks, &local));
    CHECK(snow_process_new(local, 9, &p));
    uint8_t *name = atom_name("anything", &len);
    expect_status(snow_register_global(local, p.id, name, len), SNOW_ERR_NOT_DISTRIBUTED, "local-only register");
    printf("LOCAL_ONLY %s\n", snow_last_error());
    free(name);
    CHECK(snow_node_stop(local, on_done, pending_for(&q, "stop local")));
    wait_done("stop local");
    snow_node_free(local);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snow_log_from_env();
    queue_init(&q);
    enc = snow_encoder_new();
    local_only_node_refuses();

    const char *peer = env("PEER_NODE");
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    CHECK(snow_node_start_env(&callbacks, &node));
    snow_pid a, b, found;
    CHECK(snow_process_new(node, 1, &a));
    CHECK(snow_process_new(node, 2, &b));
    CHECK(snow_connect(node, peer, on_done, pending_for(&q, "connect")));
    wait_done("connect");

    size_t service_len, second_len, rust_len, nobody_len, len;
    uint8_t *service = atom_name("c_service", &service_len);
    uint8_t *second = atom_name("c_second", &second_len);
    uint8_t *rust = atom_name("rust_service", &rust_len);
    uint8_t *nobody = atom_name("nobody", &nobody_len);
    const uint8_t *data;

    /* Bad input and unknown names. */
    expect_status(snow_whereis_global(node, nobody, nobody_len, &found), SNOW_ERR_NOT_REGISTERED, "whereis nobody");
    printf("WHEREIS_NOBODY %s\n", snow_last_error());
    encode_atom_term(enc, "hello");
    encoded(enc, &data, &len);
    expect_status(snow_send_global(node, a.id, nobody, nobody_len, data, len, NULL), SNOW_ERR_NOT_REGISTERED,
                  "send to nobody");
    expect_status(snow_register_global(node, a.id, (const uint8_t *)"\x01\x8f", 2), SNOW_ERR_BAD_TERM,
                  "a name that is no term");
    printf("BAD_NAME %s\n", snow_last_error());
    expect_status(snow_register_global(node, 99, service, service_len), SNOW_ERR_NO_PROCESS, "a process that is not");

    /* Register, refuse a second holder, move, move back. */
    CHECK(snow_register_global(node, a.id, service, service_len));
    expect_status(snow_register_global(node, b.id, service, service_len), SNOW_ERR_NAME_TAKEN, "taken");
    printf("TAKEN %s\n", snow_last_error());
    CHECK(snow_re_register_global(node, b.id, service, service_len));
    CHECK(snow_whereis_global(node, service, service_len, &found));
    if (!same_pid(&found, &b)) FAIL("c_service is not at b after the move");
    CHECK(snow_re_register_global(node, a.id, service, service_len));
    CHECK(snow_whereis_global(node, service, service_len, &found));
    if (!same_pid(&found, &a)) FAIL("c_service is not back at a");
    printf("REGISTERED\n");

    /* The Rust node sends to c_service by name. */
    printf("A_GOT %s\n", next_message(1));

    /* The Rust node's own global name, once this node has heard of it. */
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        snow_status s = snow_whereis_global(node, rust, rust_len, &found);
        if (s == SNOW_OK) break;
        expect_status(s, SNOW_ERR_NOT_REGISTERED, "whereis rust_service");
        clock_gettime(CLOCK_MONOTONIC, &now);
        if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 > WAIT_MS)
            FAIL("rust_service is not known here within %d ms", WAIT_MS);
        struct timespec pause = {0, 10000000L};
        nanosleep(&pause, NULL);
    }
    printf("FOUND %s\n", found.node);
    snow_pid to;
    encode_request(enc, &a, "pong");
    encoded(enc, &data, &len);
    CHECK(snow_send_global(node, a.id, rust, rust_len, data, len, &to));
    if (!same_pid(&to, &found)) FAIL("snow_send_global sent to another pid than whereis gave");
    expect_status(snow_unregister_global(node, rust, rust_len), SNOW_ERR_NAME_TAKEN, "withdraw a name held elsewhere");
    printf("HELD_ELSEWHERE %s\n", snow_last_error());

    /* A name is freed everywhere when its process exits. */
    CHECK(snow_register_global(node, b.id, second, second_len));
    printf("SECOND\n");
    printf("A_GOT %s\n", next_message(1));
    encode_atom_term(enc, "normal");
    encoded(enc, &data, &len);
    CHECK(snow_process_exit(node, b.id, data, len));
    expect_status(snow_whereis_global(node, second, second_len, &found), SNOW_ERR_NOT_REGISTERED,
                  "c_second after its process exited");
    printf("EXIT_FREED\n");

    /* Withdrawn by its node; withdrawing a name nobody holds is fine. */
    CHECK(snow_unregister_global(node, service, service_len));
    expect_status(snow_whereis_global(node, service, service_len, &found), SNOW_ERR_NOT_REGISTERED,
                  "c_service after unregister");
    CHECK(snow_unregister_global(node, service, service_len));
    printf("UNREGISTERED\n");

    printf("A_GOT %s\n", next_message(1));
    CHECK(snow_node_stop(node, on_done, pending_for(&q, "stop")));
    for (;;) {
        item *it = next();
        int done = it->kind == ITEM_DONE && strcmp(it->tag, "stop") == 0;
        if (it->kind == ITEM_DONE && !done) FAIL("unexpected completion %s", it->tag);
        if (done && it->status != SNOW_OK) FAIL("stop: %s", it->error);
        free_item(it);
        if (done) break;
    }
    snow_node_free(node);
    snow_encoder_free(enc);
    free(service);
    free(second);
    free(rust);
    free(nobody);
    printf("DONE\n");
    return 0;
}
