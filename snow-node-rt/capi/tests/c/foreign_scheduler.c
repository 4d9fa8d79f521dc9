/*
 * A foreign scheduler hosts the runtime: one thread of this program (main) runs everything, the
 * runtime's own tasks (connections, listener, snow-epmd keeper: handed over by the `schedule`
 * callback, run with snow_task_run) and this program's processes (state machines fed by the
 * `deliver` callback). The callbacks only queue; the library may call them from any thread.
 *
 * Processes: `c_echo` (registered) answers {from, term} with {:c_echo, self, term}; processes that
 * other nodes spawn with the function `c_echo` do the same once they get SNOW_EVENT_START. Any of
 * them exits with {:shutdown, :done} on the atom `stop`. When none is left, the program stops the
 * node, checks that no runtime task is left, and exits 0.
 */
#include "harness.h"

#define MAX_PROCS 16

typedef struct proc {
    bool used, running;
    snow_pid pid;
} proc;

static queue q;
static proc procs[MAX_PROCS]; /* the token of a process is its index */
static pthread_t main_thread;
static long scheduled_elsewhere; /* schedule calls from threads other than main (atomic) */

static void on_schedule(void *ctx, snow_task *task) {
    if (!pthread_equal(pthread_self(), main_thread)) __atomic_add_fetch(&scheduled_elsewhere, 1, __ATOMIC_RELAXED);
    item *it = new_item(ITEM_TASK);
    it->task = task;
    queue_push((queue *)ctx, it);
}

/* Remote spawn: only `c_echo` is offered; the new process waits for SNOW_EVENT_START. */
static snow_status on_spawn(void *ctx, const char *function, size_t function_len, const uint8_t *args,
                            size_t args_len, uint64_t *token) {
    (void)ctx;
    (void)args;
    (void)args_len;
    if (function_len != 6 || memcmp(function, "c_echo", 6) != 0) return SNOW_ERR_REFUSED;
    /* Called on a runtime thread: the process table is only claimed here, under the queue's lock. */
    pthread_mutex_lock(&q.lock);
    for (uint64_t i = 1; i < MAX_PROCS; i++) {
        if (!procs[i].used) {
            procs[i].used = true;
            procs[i].running = false;
            pthread_mutex_unlock(&q.lock);
            *token = i;
            return SNOW_OK;
        }
    }
    pthread_mutex_unlock(&q.lock);
    return SNOW_ERR_REFUSED;
}

static int live_processes(void) {
    int n = 0;
    pthread_mutex_lock(&q.lock);
    for (int i = 0; i < MAX_PROCS; i++) n += procs[i].used;
    pthread_mutex_unlock(&q.lock);
    return n;
}

/* One message to process `token`: an echo, or `stop`. */
static void handle_message(snow_node *node, snow_encoder *e, uint64_t token, const item *it) {
    proc *p = &procs[token];
    snow_decoder *d;
    snow_item part;
    CHECK(snow_decoder_new(it->message, it->message_len, &d));
    CHECK(snow_decode_next(d, &part));
    if (part.kind == SNOW_ATOM && part.text_len == 4 && memcmp(part.text, "stop", 4) == 0) {
        CHECK(snow_encoder_reset(e));
        CHECK(snow_encode_tuple(e, 2));
        CHECK(snow_encode_atom(e, "shutdown", 8));
        CHECK(snow_encode_atom(e, "done", 4));
        const uint8_t *data;
        size_t len;
        encoded(e, &data, &len);
        CHECK(snow_process_exit(node, p->pid.id, data, len));
        printf("EXITED %llu\n", (unsigned long long)token);
        pthread_mutex_lock(&q.lock);
        p->used = p->running = false;
        pthread_mutex_unlock(&q.lock);
    } else if (part.kind == SNOW_TUPLE && part.count == 2) {
        CHECK(snow_decode_next(d, &part));
        if (part.kind != SNOW_PID) FAIL("a request without a pid: %s", text_of(it->message, it->message_len));
        snow_pid from = part.pid;
        /* The reply: {:c_echo, self, term}, the term copied from the request as bytes. */
        snow_decoder_free(d);
        CHECK(snow_decoder_new(it->message, it->message_len, &d));
        CHECK(snow_encoder_reset(e));
        CHECK(snow_encode_tuple(e, 3));
        CHECK(snow_encode_atom(e, "c_echo", 6));
        CHECK(snow_encode_pid(e, &p->pid));
        /* Skip the tuple and the pid, then copy the one remaining value (a string here). */
        CHECK(snow_decode_next(d, &part));
        CHECK(snow_decode_next(d, &part));
        CHECK(snow_decode_next(d, &part));
        if (part.kind == SNOW_STRING) CHECK(snow_encode_string(e, (const char *)part.text, part.text_len));
        else if (part.kind == SNOW_ATOM) CHECK(snow_encode_atom(e, (const char *)part.text, part.text_len));
        else if (part.kind == SNOW_INT) CHECK(snow_encode_int(e, part.integer));
        else FAIL("an echo of something else than a string, atom or integer");
        const uint8_t *data;
        size_t len;
        encoded(e, &data, &len);
        snow_status s = snow_send(node, p->pid.id, &from, data, len);
        if (s < 0) FAIL("the reply: %d %s", (int)s, snow_last_error());
    } else {
        printf("IGNORED %s\n", text_of(it->message, it->message_len));
    }
    snow_decoder_free(d);
}

int main(void) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    snow_log_from_env();
    queue_init(&q);
    main_thread = pthread_self();
    snow_callbacks callbacks = {.ctx = &q, .deliver = on_deliver, .spawn = on_spawn, .schedule = on_schedule};
    snow_node *node;
    CHECK(snow_node_start_env(&callbacks, &node));
    procs[0].used = procs[0].running = true;
    CHECK(snow_process_new(node, 0, &procs[0].pid));
    CHECK(snow_register(node, procs[0].pid.id, "c_echo", 6));
    if (snow_register(node, procs[0].pid.id, "again", 5) != SNOW_ERR_NAME_TAKEN) FAIL("a second name was accepted");
    printf("READY %s\n", snow_node_name(node));

    snow_encoder *e = snow_encoder_new();
    long tasks_run = 0;
    bool stopping = false, stopped = false;
    while (!stopped) {
        item *it = queue_pop(&q, WAIT_MS);
        if (!it) FAIL("nothing to do for %d ms (%d processes left)", WAIT_MS, live_processes());
        switch (it->kind) {
        case ITEM_TASK:
            if (!pthread_equal(pthread_self(), main_thread)) FAIL("a task ran off the main thread");
            CHECK(snow_task_run(it->task));
            tasks_run++;
            break;
        case ITEM_EVENT:
            if (it->token >= MAX_PROCS || !procs[it->token].used) FAIL("an event for process %llu, which is gone", (unsigned long long)it->token);
            switch (it->event) {
            case SNOW_EVENT_START:
                procs[it->token].pid = it->pid;
                procs[it->token].running = true;
                printf("STARTED %s\n", text_of(it->message, it->message_len));
                break;
            case SNOW_EVENT_MESSAGE:
                if (!procs[it->token].running) FAIL("a message for a process that has not started");
                handle_message(node, e, it->token, it);
                break;
            case SNOW_EVENT_EXIT:
                printf("EXIT linked=%d %s\n", it->linked, text_of(it->reason, it->reason_len));
                break;
            case SNOW_EVENT_DOWN:
                printf("DOWN %s\n", text_of(it->reason, it->reason_len));
                break;
            case SNOW_EVENT_RESUME:
                break;
            default:
                FAIL("unknown event %u", it->event);
            }
            break;
        case ITEM_DONE:
            if (strcmp(it->tag, "stop") != 0) FAIL("completion of %s", it->tag);
            if (it->status != SNOW_OK) FAIL("stop: %d %s", (int)it->status, it->error);
            stopped = true;
            break;
        }
        free_item(it);
        if (!stopping && live_processes() == 0) {
            printf("ALL_EXITED\n");
            CHECK(snow_node_stop(node, on_done, pending_for(&q, "stop")));
            stopping = true;
        }
    }
    /* After the stop's completion no task is left, so nothing is queued or scheduled any more. */
    item *left = queue_pop(&q, 200);
    if (left) FAIL("after the stop: an item of kind %d", left->kind);
    printf("TASKS_RUN %ld\n", tasks_run);
    printf("SCHEDULED_ELSEWHERE %ld\n", __atomic_load_n(&scheduled_elsewhere, __ATOMIC_RELAXED));
    snow_encoder_free(e);
    snow_node_free(node);
    printf("DONE\n");
    return 0;
}
