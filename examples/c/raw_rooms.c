/*
 * raw_rooms.c — wsbroker's raw WebSocket mode (no STOMP): chat rooms on plain messages.
 *
 *   ws://HOST:PORT/rooms?room=NAME   host-driven endpoint: on open the client joins topic
 *                                    "room/NAME" (default room "lobby") and gets
 *                                    "welcome guest-N to NAME"; every text message it sends is
 *                                    published to its room as "guest-N: <text>", every binary
 *                                    message as is (binary). A client whose own unsent bytes
 *                                    pass 256 KiB is not reading: it is closed with 1008.
 *   ws://HOST:PORT/echo              built-in echo endpoint (runs inside the broker)
 *
 * Each raw connection's user data holds its slot in a small guest table (index + 1), the way a
 * host keeps a pointer to its own per-connection object; the slot is freed on RAW_CLOSE.
 *
 * --mode poll: events are drained on the main thread with wsb_server_poll_timeout.
 * --mode callback: events arrive on the broker's runtime threads; the table is locked.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/c/raw_rooms.c -Ltarget/release -lwsbroker \
 *      -Wl,-rpath,$PWD/target/release -pthread -o raw_rooms
 *
 * Exit codes: 0 after SIGINT/SIGTERM or after --exit-after N room messages, 1 when a wsbroker
 * call fails, 2 on a bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "example_common.h"

#define ROOMS_PATH "/rooms"
#define ECHO_PATH "/echo"
#define MAX_GUESTS 64
#define MAX_ROOM 31
#define MAX_MESSAGE 1024 /* larger client messages close the connection with 1009 */
#define MAX_EVENTS 64
#define NOT_READING_BYTES (256 * 1024)

typedef struct guest {
    uint64_t conn; /* 0: free slot */
    unsigned long number;
    char topic[sizeof "room/" + MAX_ROOM];
} guest;

typedef struct app {
    wsb_server *server;
    int locked; /* callback mode: events come from runtime threads → use `lock` */
    pthread_mutex_t lock;
    guest guests[MAX_GUESTS];
    unsigned long next_number;
    unsigned long opened, closed, relayed, refused;
    int failed; /* a wsbroker call failed unexpectedly */
} app;

static void app_lock(app *a)
{
    if (a->locked) {
        pthread_mutex_lock(&a->lock);
    }
}

static void app_unlock(app *a)
{
    if (a->locked) {
        pthread_mutex_unlock(&a->lock);
    }
}

/* The room named by the query's `room=` parameter ([A-Za-z0-9_-], at most MAX_ROOM
 * characters), or "lobby". */
static void room_of(const wsb_event *ev, char *room, size_t cap)
{
    const char *q = ev->query;
    size_t len = ev->query_len, i = 0, n = 0;
    snprintf(room, cap, "lobby");
    while (q != NULL && i < len) {
        if (len - i > 5 && memcmp(q + i, "room=", 5) == 0) {
            i += 5;
            while (i < len && q[i] != '&' && n + 1 < cap) {
                char c = q[i++];
                int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                         c == '_' || c == '-';
                if (!ok) {
                    snprintf(room, cap, "lobby");
                    return;
                }
                room[n++] = c;
            }
            if (n > 0) {
                room[n] = '\0';
            } else {
                snprintf(room, cap, "lobby");
            }
            return;
        }
        while (i < len && q[i] != '&') {
            i++;
        }
        i++; /* past '&' */
    }
}

/* A wsbroker call that may meet a connection that just closed (its id is then stale). */
static int call_ok(app *a, wsb_result r, const char *what)
{
    if (r == WSB_OK || r == WSB_ERR_NOT_FOUND || r == WSB_ERR_BACKPRESSURE) {
        return r == WSB_OK;
    }
    example_check(r, what, __FILE__, __LINE__);
    a->failed = 1;
    return 0;
}

static void on_open(app *a, const wsb_event *ev)
{
    char room[MAX_ROOM + 1], welcome[96];
    size_t slot;
    guest *g = NULL;
    int len;
    if (ev->destination_len == strlen(ECHO_PATH) && memcmp(ev->destination, ECHO_PATH, ev->destination_len) == 0) {
        return; /* the echo endpoint needs nothing from the host */
    }
    room_of(ev, room, sizeof room);
    app_lock(a);
    for (slot = 0; slot < MAX_GUESTS; slot++) {
        if (a->guests[slot].conn == 0) {
            g = &a->guests[slot];
            g->conn = ev->session;
            g->number = ++a->next_number;
            snprintf(g->topic, sizeof g->topic, "room/%s", room);
            a->opened++;
            break;
        }
    }
    if (g == NULL) {
        a->refused++;
    }
    app_unlock(a);
    if (g == NULL) {
        (void)call_ok(a, wsb_server_raw_close(a->server, ev->session, 1013, "room server full", 16), "raw_close");
        return;
    }
    (void)call_ok(a, wsb_server_raw_set_user_data(a->server, ev->session, (uint64_t)slot + 1), "raw_set_user_data");
    (void)call_ok(a, wsb_server_raw_subscribe(a->server, ev->session, g->topic, strlen(g->topic), NULL),
                  "raw_subscribe");
    len = snprintf(welcome, sizeof welcome, "welcome guest-%lu to %s", g->number, room);
    (void)call_ok(a, wsb_server_raw_send(a->server, ev->session, (const uint8_t *)welcome, (size_t)len, 0),
                  "raw_send");
}

static void on_message(app *a, const wsb_event *ev)
{
    uint64_t slot = 0;
    size_t buffered = 0, receivers = 0;
    char topic[sizeof "room/" + MAX_ROOM];
    char text[32 + MAX_MESSAGE];
    unsigned long number;
    int len;
    if (!call_ok(a, wsb_server_raw_user_data(a->server, ev->session, &slot), "raw_user_data") || slot == 0 ||
        slot > MAX_GUESTS) {
        return;
    }
    if (call_ok(a, wsb_server_raw_buffered_bytes(a->server, ev->session, &buffered), "raw_buffered_bytes") &&
        buffered > NOT_READING_BYTES) {
        (void)call_ok(a, wsb_server_raw_close(a->server, ev->session, 1008, "not reading", 11), "raw_close");
        return;
    }
    app_lock(a);
    number = a->guests[slot - 1].number;
    memcpy(topic, a->guests[slot - 1].topic, sizeof topic);
    app_unlock(a);
    if (ev->binary) {
        (void)call_ok(a, wsb_server_raw_publish(a->server, topic, strlen(topic), ev->body, ev->body_len, 1, &receivers),
                      "raw_publish");
    } else {
        len = snprintf(text, sizeof text, "guest-%lu: %.*s", number, (int)ev->body_len, (const char *)ev->body);
        (void)call_ok(a, wsb_server_raw_publish(a->server, topic, strlen(topic), (const uint8_t *)text, (size_t)len, 0,
                                                &receivers),
                      "raw_publish");
    }
    app_lock(a);
    a->relayed++;
    app_unlock(a);
}

static void on_close(app *a, const wsb_event *ev)
{
    size_t slot;
    app_lock(a);
    for (slot = 0; slot < MAX_GUESTS; slot++) {
        if (a->guests[slot].conn == ev->session) {
            a->guests[slot].conn = 0;
            a->closed++;
            break;
        }
    }
    app_unlock(a);
}

static void handle(app *a, const wsb_event *ev)
{
    switch (ev->kind) {
    case WSB_EVENT_RAW_OPEN:
        on_open(a, ev);
        break;
    case WSB_EVENT_RAW_MESSAGE:
        on_message(a, ev);
        break;
    case WSB_EVENT_RAW_CLOSE:
        on_close(a, ev);
        break;
    default:
        break;
    }
}

static void on_event(void *user_data, const wsb_event *ev)
{
    handle((app *)user_data, ev);
}

static unsigned long relayed(app *a)
{
    unsigned long n;
    app_lock(a);
    n = a->relayed;
    app_unlock(a);
    return n;
}

int main(int argc, char **argv)
{
    example_options opts;
    wsb_config *cfg;
    app a;
    wsb_event events[MAX_EVENTS];
    uint16_t port = 0;
    int rc, ok = 1;

    rc = example_parse_args(argc, argv, &opts, "N room messages");
    if (rc != 0) {
        return rc;
    }
    memset(&a, 0, sizeof a);
    a.locked = opts.mode == WSB_DELIVERY_CALLBACK;
    pthread_mutex_init(&a.lock, NULL);
    if (!example_install_signals() || (cfg = example_new_config(&opts)) == NULL) {
        return 1;
    }
    if (opts.mode == WSB_DELIVERY_CALLBACK && !CHECK(wsb_config_set_event_callback(cfg, on_event, &a, NULL))) {
        wsb_config_free(cfg);
        return 1;
    }
    if (!CHECK(wsb_server_new(cfg, &a.server))) {
        wsb_config_free(cfg);
        return 1;
    }
    wsb_config_free(cfg);
    if (!CHECK(wsb_server_add_raw_endpoint(a.server, ROOMS_PATH, strlen(ROOMS_PATH), WSB_RAW_HOST, NULL, 0,
                                           WSB_RAW_POLICY_SERVER, MAX_MESSAGE)) ||
        !CHECK(wsb_server_add_raw_endpoint(a.server, ECHO_PATH, strlen(ECHO_PATH), WSB_RAW_ECHO, NULL, 0,
                                           WSB_SLOW_CONSUMER_DISCONNECT, 0)) ||
        !example_start(a.server, &opts) || !CHECK(wsb_server_local_port(a.server, &port))) {
        example_shutdown(a.server);
        return 1;
    }
    printf("wsbroker listening raw ws://127.0.0.1:%u%s (host)\n", (unsigned)port, ROOMS_PATH);
    printf("wsbroker listening raw ws://127.0.0.1:%u%s (echo)\n", (unsigned)port, ECHO_PATH);
    fflush(stdout);

    while (!example_stop_requested && !a.failed && (opts.exit_after == 0 || relayed(&a) < opts.exit_after)) {
        if (opts.mode == WSB_DELIVERY_POLL) {
            size_t n = 0, i;
            if (!CHECK(wsb_server_poll_timeout(a.server, events, MAX_EVENTS, 100, &n))) {
                ok = 0;
                break;
            }
            for (i = 0; i < n; i++) {
                handle(&a, &events[i]);
            }
        } else {
            example_sleep_ms(50);
        }
    }
    ok &= !a.failed;
    ok &= example_shutdown(a.server);
    fprintf(stderr, "raw_rooms: %lu opened, %lu closed, %lu relayed, %lu refused\n", a.opened, a.closed, a.relayed,
            a.refused);
    pthread_mutex_destroy(&a.lock);
    return ok ? 0 : 1;
}
