/*
 * A C program joins a cluster through the static library, with the runtime's own threads running
 * the runtime's tasks: it starts a node from its environment, connects to the Rust echo node
 * PEER_NODE, sends by name, gets the reply in its callback, spawns a process there (linked and
 * monitored), has a spawn refused, monitors the echo process (by pid and by name) and the node,
 * then waits for the test to kill the echo node and checks that every link and monitor fires
 * with :noconnection. It prints one line per step for the test to check; exit status 0 = passed.
 */
#include "harness.h"

static queue q;

/* The pid in a reply {:echo, Pid, Term}. */
static snow_pid pid_in_reply(const item *reply) {
    snow_decoder *d;
    snow_item part;
    CHECK(snow_decoder_new(reply->message, reply->message_len, &d));
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_TUPLE || part.count != 3) FAIL("reply is not a 3-tuple: %s", text_of(reply->message, reply->message_len));
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_ATOM || part.text_len != 4 || memcmp(part.text, "echo", 4) != 0) FAIL("reply is not tagged :echo");
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_PID) FAIL("reply's second element is not a pid");
    snow_pid pid = part.pid;
    snow_decoder_free(d);
    return pid;
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snow_log_from_env();
    queue_init(&q);
    const char *peer = env("PEER_NODE");
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    snow_node *node;
    CHECK(snow_node_start_env(&callbacks, &node));
    printf("NODE %s alive=%d\n", snow_node_name(node), snow_node_is_alive(node));

    snow_pid me;
    CHECK(snow_process_new(node, 1, &me));
    CHECK(snow_connect(node, peer, on_done, pending_for(&q, "connect")));
    item *it = expect_done_of(&q, "connect");
    if (it->status != SNOW_OK) FAIL("connect: %d %s", (int)it->status, it->error);
    free_item(it);
    snow_bytes nodes;
    CHECK(snow_node_nodes(node, &nodes));
    printf("NODES %s\n", text_of(nodes.data, nodes.len));
    snow_bytes_free(&nodes);

    /* A send by name; the reply comes through the callback. */
    snow_encoder *e = snow_encoder_new();
    const uint8_t *data;
    size_t len;
    encode_request(e, &me, "hello");
    encoded(e, &data, &len);
    CHECK(snow_send_named(node, me.id, "echo", 4, peer, data, len));
    it = expect_message_in(&q, "the echo's reply");
    printf("REPLY %s\n", text_of(it->message, it->message_len));
    snow_pid echo = pid_in_reply(it);
    free_item(it);

    /* Monitors: the echo process by pid and by name, and its node. */
    snow_ref by_pid, by_name;
    CHECK(snow_monitor(node, me.id, &echo, &by_pid));
    CHECK(snow_monitor_name(node, me.id, "echo", 4, peer, &by_name));
    CHECK(snow_monitor_node(node, me.id, peer, true));

    /* A remote spawn, linked and monitored; the child answers like the echo. */
    CHECK(snow_encoder_reset(e));
    CHECK(snow_encode_list(e, 0));
    encoded(e, &data, &len);
    CHECK(snow_spawn_remote(node, me.id, peer, "echo", 4, data, len, SNOW_SPAWN_LINK | SNOW_SPAWN_MONITOR, on_done,
                            pending_for(&q, "spawn")));
    it = expect_done_of(&q, "spawn");
    if (it->status != SNOW_OK || !it->has_pid || !it->has_ref) FAIL("spawn: %d %s", (int)it->status, it->error);
    snow_pid child = it->pid;
    snow_ref child_monitor = it->ref;
    printf("SPAWNED on %s\n", child.node);
    free_item(it);
    encode_request(e, &me, "to the child");
    encoded(e, &data, &len);
    CHECK(snow_send(node, me.id, &child, data, len));
    it = expect_message_in(&q, "the child's reply");
    printf("CHILD_REPLY %s\n", text_of(it->message, it->message_len));
    snow_pid replier = pid_in_reply(it);
    if (!same_pid(&replier, &child)) FAIL("the reply did not come from the spawned child");
    free_item(it);

    /* A function the echo node does not offer is refused, with its reason. */
    CHECK(snow_encoder_reset(e));
    CHECK(snow_encode_list(e, 0));
    encoded(e, &data, &len);
    CHECK(snow_spawn_remote(node, me.id, peer, "nope", 4, data, len, 0, on_done, pending_for(&q, "refused")));
    it = expect_done_of(&q, "refused");
    if (it->status != SNOW_ERR_REFUSED) FAIL("the spawn of nope: status %d, expected SNOW_ERR_REFUSED", (int)it->status);
    printf("REFUSED %s\n", text_of(it->reason, it->reason_len));
    free_item(it);

    /* Bad input gets an error code and a message, not a crash. */
    if (snow_send(node, me.id, &echo, (const uint8_t *)"\x01\x8f", 2) != SNOW_ERR_BAD_TERM) FAIL("a bad term was sent");
    printf("BAD_TERM %s\n", snow_last_error());
    if (snow_send(node, 999999, &echo, data, len) != SNOW_ERR_NO_PROCESS) FAIL("a send from no process succeeded");

    printf("MONITORING\n");
    /* The test kills the echo node now: 3 :DOWNs, 1 exit signal of the link, 1 {:nodedown, peer}. */
    int downs = 0, exits = 0, nodedowns = 0;
    for (int i = 0; i < 5; i++) {
        it = expect_item(&q, ITEM_EVENT, "the events of the lost connection");
        if (it->event == SNOW_EVENT_DOWN) {
            const char *which = same_ref(&it->ref, &by_pid) ? "pid" : same_ref(&it->ref, &by_name) ? "name"
                              : same_ref(&it->ref, &child_monitor) ? "child" : "unknown";
            printf("DOWN %s %s\n", which, text_of(it->reason, it->reason_len));
            printf("DOWN_MESSAGE %s\n", text_of(it->message, it->message_len));
            downs++;
        } else if (it->event == SNOW_EVENT_EXIT) {
            if (!it->has_pid || !same_pid(&it->pid, &child)) FAIL("an exit signal from another process than the child");
            printf("EXIT linked=%d %s\n", it->linked, text_of(it->reason, it->reason_len));
            exits++;
        } else if (it->event == SNOW_EVENT_MESSAGE) {
            printf("MESSAGE %s\n", text_of(it->message, it->message_len));
            nodedowns++;
        } else {
            FAIL("unexpected event %u", it->event);
        }
        free_item(it);
    }
    if (downs != 3 || exits != 1 || nodedowns != 1) FAIL("downs %d exits %d nodedowns %d", downs, exits, nodedowns);
    printf("ALL_FIRED\n");

    CHECK(snow_node_stop(node, on_done, pending_for(&q, "stop")));
    it = expect_done_of(&q, "stop");
    if (it->status != SNOW_OK) FAIL("stop: %d %s", (int)it->status, it->error);
    free_item(it);
    printf("STOPPED alive=%d\n", snow_node_is_alive(node));
    encode_atom_term(e, "normal");
    encoded(e, &data, &len);
    CHECK(snow_process_exit(node, me.id, data, len));
    snow_encoder_free(e);
    snow_node_free(node);
    it = queue_pop(&q, 200);
    if (it) FAIL("an event after the node was stopped: kind %d", it->kind);
    printf("DONE\n");
    return 0;
}
