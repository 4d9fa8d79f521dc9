/*
 * The C half of the boundary benchmark: the same workloads as the Rust bench client
 * (integration/src/snow_bench.rs), through the C ABI, against the same Rust bench server
 * (bench_sink, bench_echo on b@127.0.0.1). Throughput: binaries of 64 B and 1 KiB sent to
 * bench_sink, which acknowledges every K; at most 4 batches unacknowledged; a send that returns
 * SNOW_SUSPEND waits for SNOW_EVENT_RESUME (the Rust client's send_async). Round trip: {self, seq}
 * to bench_echo, which answers seq. Prints the same `RESULT key value` lines as the Rust client.
 * Environment: BENCH_N64, BENCH_N1K (messages), BENCH_RTT (round trips), BENCH_SERVER.
 */
#include "harness.h"

#define WINDOW 4

static queue q;
static snow_node *node;
static snow_pid me;
static snow_encoder *enc;

/* The C thread waits like a process of the runtime does: parked until an event comes. It does not
 * spin: the runtime's scheduler thread that reads the socket already spins for I/O
 * (SNOW_SCHED_SPIN_US), and a second spinner in the client competes with it, and with the server,
 * for the same cores (measured on the 2-core VM: a 50 us spin here made the round trip 55 us
 * slower, not faster). */
static item *next_item(void) {
    item *it = queue_pop(&q, 60000);
    if (!it) FAIL("nothing arrived within 60 s");
    return it;
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* The next message (RESUMEs are consumed by the sender). */
static item *next_message(void) {
    for (;;) {
        item *it = next_item();
        if (it->kind == ITEM_EVENT && it->event == SNOW_EVENT_MESSAGE) return it;
        if (it->kind == ITEM_EVENT && it->event == SNOW_EVENT_RESUME) { free_item(it); continue; }
        FAIL("unexpected item kind %d event %u", it->kind, it->event);
    }
}

/* Sends, waiting for RESUME after SNOW_SUSPEND. */
static void send_to(const snow_pid *to, const uint8_t *data, size_t len) {
    snow_status s = snow_send(node, me.id, to, data, len);
    if (s < 0) FAIL("send: %d %s", (int)s, snow_last_error());
    if (s == SNOW_SUSPEND) {
        for (;;) {
            item *it = next_item();
            int resumed = it->kind == ITEM_EVENT && it->event == SNOW_EVENT_RESUME;
            if (!resumed) FAIL("a message while suspended (kind %d event %u)", it->kind, it->event);
            free_item(it);
            break;
        }
    }
}

/* {tag, Pid} from a whois. */
static snow_pid whois(const char *name, const char *server) {
    const uint8_t *data;
    size_t len;
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_tuple(enc, 2));
    CHECK(snow_encode_atom(enc, "whois", 5));
    CHECK(snow_encode_pid(enc, &me));
    encoded(enc, &data, &len);
    CHECK(snow_send_named(node, me.id, name, strlen(name), server, data, len));
    item *it = next_message();
    snow_decoder *d;
    snow_item part;
    CHECK(snow_decoder_new(it->message, it->message_len, &d));
    CHECK(snow_decode_next(d, &part));
    CHECK(snow_decode_next(d, &part));
    CHECK(snow_decode_next(d, &part));
    if (part.kind != SNOW_PID) FAIL("odd whois answer %s", text_of(it->message, it->message_len));
    snow_pid pid = part.pid;
    snow_decoder_free(d);
    free_item(it);
    return pid;
}

/* Waits for {ack, N} with N >= min. */
static void wait_ack(long long min) {
    for (;;) {
        item *it = next_message();
        snow_decoder *d;
        snow_item part;
        CHECK(snow_decoder_new(it->message, it->message_len, &d));
        CHECK(snow_decode_next(d, &part));
        CHECK(snow_decode_next(d, &part));
        CHECK(snow_decode_next(d, &part));
        long long n = part.integer;
        snow_decoder_free(d);
        free_item(it);
        if (n >= min) return;
    }
}

static void send_batch(const snow_pid *sink, size_t size, long long total, long long k) {
    const uint8_t *data;
    size_t len;
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_tuple(enc, 3));
    CHECK(snow_encode_atom(enc, "start", 5));
    CHECK(snow_encode_pid(enc, &me));
    CHECK(snow_encode_int(enc, k));
    encoded(enc, &data, &len);
    send_to(sink, data, len);
    /* The payload is encoded once; the library copies it at every send, as the Rust client's
     * payload.to_vec() does. */
    uint8_t *payload = calloc(size, 1);
    memset(payload, 7, size);
    CHECK(snow_encoder_reset(enc));
    CHECK(snow_encode_binary(enc, payload, size));
    encoded(enc, &data, &len);
    uint8_t *message = copy_bytes(data, len);
    for (long long sent = 1; sent <= total; sent++) {
        send_to(sink, message, len);
        if (sent % k == 0 && sent > WINDOW * k) wait_ack(sent - WINDOW * k);
    }
    wait_ack(total);
    free(message);
    free(payload);
}

static int cmp_ll(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snow_log_from_env();
    queue_init(&q);
    const char *server = env("BENCH_SERVER");
    long long counts[2] = {atoll(env("BENCH_N64")), atoll(env("BENCH_N1K"))};
    long long batches[2] = {1000, 500};
    size_t sizes[2] = {64, 1024};
    long long rtts = atoll(env("BENCH_RTT"));
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = NULL, .schedule = NULL};
    CHECK(snow_node_start_env(&callbacks, &node));
    CHECK(snow_process_new(node, 1, &me));
    enc = snow_encoder_new();
    snow_pid sink = whois("bench_sink", server);
    snow_pid echo = whois("bench_echo", server);
    for (int i = 0; i < 2; i++) {
        long long k = batches[i];
        long long warm = (counts[i] / 10) / k * k;
        if (warm < k) warm = k;
        send_batch(&sink, sizes[i], warm, k);
        long long total = counts[i] / k * k;
        if (total < k) total = k;
        long long t0 = now_ns();
        send_batch(&sink, sizes[i], total, k);
        long long elapsed = now_ns() - t0;
        printf("RESULT tput_%zu_msgs %lld\nRESULT tput_%zu_ns %lld\n", sizes[i], total, sizes[i], elapsed);
    }
    long long *samples = calloc((size_t)rtts, sizeof *samples);
    for (long long seq = -1000; seq < rtts; seq++) {
        const uint8_t *data;
        size_t len;
        long long t0 = now_ns();
        CHECK(snow_encoder_reset(enc));
        CHECK(snow_encode_tuple(enc, 2));
        CHECK(snow_encode_pid(enc, &me));
        CHECK(snow_encode_int(enc, seq));
        encoded(enc, &data, &len);
        send_to(&echo, data, len);
        item *it = next_message();
        snow_decoder *d;
        snow_item part;
        CHECK(snow_decoder_new(it->message, it->message_len, &d));
        CHECK(snow_decode_next(d, &part));
        if (part.kind != SNOW_INT || part.integer != seq) FAIL("round trip %lld: odd answer", seq);
        snow_decoder_free(d);
        free_item(it);
        if (seq >= 0) samples[seq] = now_ns() - t0;
    }
    qsort(samples, (size_t)rtts, sizeof *samples, cmp_ll);
    long long median = samples[(rtts * 50 + 99) / 100 - 1], p99 = samples[(rtts * 99 + 99) / 100 - 1];
    printf("RESULT rtt_median_ns %lld\nRESULT rtt_p99_ns %lld\n", median, p99);
    CHECK(snow_node_stop(node, on_done, pending_for(&q, "stop")));
    for (;;) {
        item *it = next_item();
        int done = it->kind == ITEM_DONE;
        free_item(it);
        if (done) break;
    }
    snow_encoder_free(enc);
    snow_node_free(node);
    free(samples);
    return 0;
}
