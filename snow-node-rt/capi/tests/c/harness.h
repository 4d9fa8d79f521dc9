/*
 * What the C test programs share: a queue that the library's callbacks fill from any thread and
 * the program's own thread drains (with a deadline on every wait), copies of events and
 * completions, and helpers to build and print terms. Every failure prints one line to stderr and
 * exits with status 1.
 */
#ifndef SNOW_TEST_HARNESS_H
#define SNOW_TEST_HARNESS_H

#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snow_node.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        exit(1);                                                                                   \
    } while (0)

/* A call that must not fail (SNOW_SUSPEND is a success). */
#define CHECK(call)                                                                                \
    do {                                                                                           \
        snow_status check_status_ = (call);                                                        \
        if (check_status_ < 0) FAIL("%s: status %d: %s", #call, (int)check_status_, snow_last_error()); \
    } while (0)

/* Every wait of a test program is bounded by this. */
#define WAIT_MS 20000

enum item_kind { ITEM_EVENT, ITEM_TASK, ITEM_DONE };

/* A copy of what a callback handed over, owned by the queue until popped. */
typedef struct item {
    struct item *next;
    enum item_kind kind;
    /* ITEM_TASK */
    snow_task *task;
    /* ITEM_EVENT */
    uint64_t token;
    uint32_t event; /* snow_event_kind */
    uint8_t *message;
    size_t message_len;
    uint8_t *reason;
    size_t reason_len;
    snow_pid pid;
    bool has_pid;
    snow_ref ref;
    bool has_ref;
    bool linked;
    /* ITEM_DONE */
    const char *tag;
    snow_status status;
    char error[512];
} item;

typedef struct queue {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    item *head, *tail;
} queue;

static inline void queue_init(queue *q) {
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&q->ready, &attr);
    q->head = q->tail = NULL;
}

static inline void queue_push(queue *q, item *it) {
    it->next = NULL;
    pthread_mutex_lock(&q->lock);
    if (q->tail) q->tail->next = it; else q->head = it;
    q->tail = it;
    pthread_cond_signal(&q->ready);
    pthread_mutex_unlock(&q->lock);
}

/* The next item, or NULL after `ms` milliseconds without one. */
static inline item *queue_pop(queue *q, long ms) {
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) { deadline.tv_sec++; deadline.tv_nsec -= 1000000000L; }
    pthread_mutex_lock(&q->lock);
    while (!q->head) {
        if (pthread_cond_timedwait(&q->ready, &q->lock, &deadline) == ETIMEDOUT) break;
    }
    item *it = q->head;
    if (it) {
        q->head = it->next;
        if (!q->head) q->tail = NULL;
    }
    pthread_mutex_unlock(&q->lock);
    return it;
}

/* The next item, which must be of `kind`; fails after WAIT_MS without one. */
static inline item *expect_item(queue *q, enum item_kind kind, const char *what) {
    item *it = queue_pop(q, WAIT_MS);
    if (!it) FAIL("no %s within %d ms", what, WAIT_MS);
    if (it->kind != kind) FAIL("waiting for %s, got an item of kind %d (event %u)", what, it->kind, it->event);
    return it;
}

/* The next item, which must be the completion tagged `tag`. */
static inline item *expect_done_of(queue *q, const char *tag) {
    item *it = expect_item(q, ITEM_DONE, tag);
    if (strcmp(it->tag, tag) != 0) FAIL("waiting for the completion of %s, got %s's", tag, it->tag);
    return it;
}

/* The next item, which must be a message. */
static inline item *expect_message_in(queue *q, const char *what) {
    item *it = expect_item(q, ITEM_EVENT, what);
    if (it->event != SNOW_EVENT_MESSAGE) FAIL("waiting for %s, got event %u", what, it->event);
    return it;
}

static inline uint8_t *copy_bytes(const uint8_t *data, size_t len) {
    if (!data || !len) return NULL;
    uint8_t *copy = malloc(len);
    if (!copy) FAIL("out of memory");
    memcpy(copy, data, len);
    return copy;
}

static inline item *new_item(enum item_kind kind) {
    item *it = calloc(1, sizeof *it);
    if (!it) FAIL("out of memory");
    it->kind = kind;
    return it;
}

static inline void free_item(item *it) {
    free(it->message);
    free(it->reason);
    free(it);
}

/* snow_deliver_fn: copy the event (its pointers die with the call) and queue it. */
static inline void on_deliver(void *ctx, uint64_t token, const snow_event *event) {
    item *it = new_item(ITEM_EVENT);
    it->token = token;
    it->event = event->kind;
    it->message = copy_bytes(event->message, event->message_len);
    it->message_len = event->message_len;
    it->reason = copy_bytes(event->reason, event->reason_len);
    it->reason_len = event->reason_len;
    if (event->pid) { it->pid = *event->pid; it->has_pid = true; }
    if (event->reference) { it->ref = *event->reference; it->has_ref = true; }
    it->linked = event->linked;
    queue_push((queue *)ctx, it);
}

/* Completions carry their queue and a tag naming the operation. */
typedef struct pending {
    queue *q;
    const char *tag;
} pending;

static inline void on_done(void *ctx, const snow_completion *c) {
    pending *p = ctx;
    item *it = new_item(ITEM_DONE);
    it->tag = p->tag;
    it->status = c->status;
    if (c->error) snprintf(it->error, sizeof it->error, "%s", c->error);
    if (c->pid) { it->pid = *c->pid; it->has_pid = true; }
    if (c->reference) { it->ref = *c->reference; it->has_ref = true; }
    it->reason = copy_bytes(c->data, c->data_len);
    it->reason_len = c->data_len;
    queue_push(p->q, it);
    free(p);
}

static inline pending *pending_for(queue *q, const char *tag) {
    pending *p = malloc(sizeof *p);
    if (!p) FAIL("out of memory");
    p->q = q;
    p->tag = tag;
    return p;
}

/* The term as text, in a static buffer (one at a time). */
static inline const char *text_of(const uint8_t *data, size_t len) {
    static char buf[4096];
    size_t needed = 0;
    snow_status s = snow_term_to_text(data, len, buf, sizeof buf, &needed);
    if (s < 0 && s != SNOW_ERR_BUFFER) FAIL("snow_term_to_text: %s", snow_last_error());
    return buf;
}

static inline int same_ref(const snow_ref *a, const snow_ref *b) {
    return a->id == b->id && a->creation == b->creation && strcmp(a->node, b->node) == 0;
}

static inline int same_pid(const snow_pid *a, const snow_pid *b) {
    return a->id == b->id && a->creation == b->creation && strcmp(a->node, b->node) == 0;
}

/* Encodes an atom as a whole term into `e` (reset first). */
static inline void encode_atom_term(snow_encoder *e, const char *atom) {
    CHECK(snow_encoder_reset(e));
    CHECK(snow_encode_atom(e, atom, strlen(atom)));
}

/* `{pid, "text"}` into `e` (reset first). */
static inline void encode_request(snow_encoder *e, const snow_pid *pid, const char *text) {
    CHECK(snow_encoder_reset(e));
    CHECK(snow_encode_tuple(e, 2));
    CHECK(snow_encode_pid(e, pid));
    CHECK(snow_encode_string(e, text, strlen(text)));
}

static inline void encoded(snow_encoder *e, const uint8_t **data, size_t *len) {
    CHECK(snow_encoder_bytes(e, data, len));
}

static inline const char *env(const char *name) {
    const char *value = getenv(name);
    if (!value) FAIL("%s is not set", name);
    return value;
}

#endif
