/*
 * chat_server.c — the STOMP chat flow, with the application logic written in C.
 *
 *   client B:  SEND /app/chat   {"chatRoomId": 5, "type": "MESSAGE", "writer": "clientB", "message": "hi"}
 *   this app:  reads chatRoomId, publishes the body unchanged (content-type: application/json)
 *              to /topic/chat/room/5
 *   client A:  SUBSCRIBE /topic/chat/room/5  → MESSAGE with that body
 *
 * A message without a usable chatRoomId is refused: the sender gets an ERROR frame.
 *
 * Two ways to receive the SENDs to /app/chat (choose with --mode):
 *   poll      wsb_server_handle_app(..., cb = NULL): every SEND becomes a WSB_EVENT_APP_MESSAGE
 *             event that the main loop takes with wsb_server_poll_timeout() — the application
 *             code runs on *your* thread. The broker has already accepted the SEND when the event
 *             is polled, so a bad message is refused by closing the sender's session with
 *             wsb_server_disconnect(): the client gets an ERROR whose message is the reason.
 *   callback  wsb_server_handle_app(..., cb = on_chat_message): the handler runs on a broker
 *             runtime thread for each SEND; returning non-zero refuses the SEND and the client
 *             gets an ERROR "/app/chat failed: <the text written into error_buf>".
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/c/chat_server.c -Ltarget/release -lwsbroker \
 *      -Wl,-rpath,$PWD/target/release -o chat_server
 * Run:
 *   ./chat_server --port 61614 --tcp-port 61615 --mode poll   (not 61613: RabbitMQ's STOMP port)
 *
 * Exit codes: 0 after SIGINT/SIGTERM or after --exit-after N chat messages (published or
 * refused), 1 when a wsbroker call fails, 2 on a bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "example_common.h"

#define CHAT_APP_DESTINATION "/app/chat"
#define ROOM_TOPIC_PREFIX "/topic/chat/room/"
#define MAX_EVENTS 32
#define MAX_ROOM_ID 1000000000UL

/* State shared by the main thread and (in callback mode) the broker's runtime threads. */
typedef struct chat_app {
    wsb_server *server;
    pthread_mutex_t lock; /* guards the counters below */
    unsigned long handled;   /* chat messages handled (published + refused) */
    unsigned long published;
    unsigned long refused;
} chat_app;

/* ---------------------------------------------------------------------------------------------
 * A deliberately tiny "JSON" scan: find the key "chatRoomId" and read the number after the
 * colon (a quoted number such as "5" is accepted too). Good enough for an example; use a real
 * JSON parser in production code.
 * ------------------------------------------------------------------------------------------- */
static int parse_room_id(const uint8_t *body, size_t len, unsigned long *out)
{
    static const char key[] = "\"chatRoomId\"";
    const size_t key_len = sizeof key - 1;
    size_t i, pos = len;
    unsigned long value = 0;
    int digits = 0, quoted = 0;

    if (body == NULL || len < key_len) {
        return 0;
    }
    for (i = 0; i + key_len <= len; i++) {
        if (memcmp(body + i, key, key_len) == 0) {
            pos = i + key_len;
            break;
        }
    }
    if (pos >= len) {
        return 0; /* no key */
    }
    while (pos < len && (body[pos] == ' ' || body[pos] == '\t' || body[pos] == '\r' || body[pos] == '\n')) {
        pos++;
    }
    if (pos >= len || body[pos] != ':') {
        return 0;
    }
    pos++;
    while (pos < len && (body[pos] == ' ' || body[pos] == '\t' || body[pos] == '\r' || body[pos] == '\n')) {
        pos++;
    }
    if (pos < len && body[pos] == '"') {
        quoted = 1;
        pos++;
    }
    while (pos < len && body[pos] >= '0' && body[pos] <= '9') {
        value = value * 10 + (unsigned long)(body[pos] - '0');
        if (value > MAX_ROOM_ID) {
            return 0;
        }
        digits++;
        pos++;
    }
    if (digits == 0 || value == 0) {
        return 0; /* not a number, or room 0 */
    }
    if (quoted && (pos >= len || body[pos] != '"')) {
        return 0;
    }
    if (!quoted && pos < len && body[pos] != ',' && body[pos] != '}' && body[pos] != ' ' &&
        body[pos] != '\t' && body[pos] != '\r' && body[pos] != '\n') {
        return 0; /* e.g. 5.5 or 5x */
    }
    *out = value;
    return 1;
}

/* The application logic, identical in both modes: publish the chat message to its room.
 * Returns 0 when published, -1 with a reason in `err` otherwise. Thread-safe (wsbroker calls
 * are thread-safe and the counters are updated under the lock). */
static int chat_handle(chat_app *app, const wsb_event *ev, char *err, size_t err_cap)
{
    static const char content_type[] = "application/json";
    char destination[64];
    unsigned long room = 0;
    wsb_header header;
    wsb_result rc;
    int len, ok = 0;

    if (!parse_room_id(ev->body, ev->body_len, &room)) {
        snprintf(err, err_cap, "missing or invalid chatRoomId (expected a positive integer)");
    } else {
        len = snprintf(destination, sizeof destination, ROOM_TOPIC_PREFIX "%lu", room);
        header.name = "content-type";
        header.name_len = strlen("content-type");
        header.value = content_type;
        header.value_len = sizeof content_type - 1;
        /* The body goes out unchanged; wsbroker copies it before the call returns. */
        rc = wsb_server_publish(app->server, destination, (size_t)len, &header, 1, ev->body, ev->body_len);
        if (CHECK(rc)) {
            ok = 1;
        } else {
            snprintf(err, err_cap, "could not publish to %s: %s", destination, wsb_result_str((int32_t)rc));
        }
    }

    pthread_mutex_lock(&app->lock);
    app->handled++;
    if (ok) {
        app->published++;
    } else {
        app->refused++;
    }
    pthread_mutex_unlock(&app->lock);

    {
        char user[64];
        fprintf(stderr, "chat: session %llu (%s): %s%s\n", (unsigned long long)ev->session,
                example_str(ev->user, ev->user_len, user, sizeof user),
                ok ? "published to " : "refused: ", ok ? destination : err);
    }
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------
 * Callback mode
 * ------------------------------------------------------------------------------------------- */

/* wsb_app_callback: runs on a broker runtime thread for every SEND to /app/chat. The event and
 * its strings are valid only during this call. Non-zero refuses the SEND with the text written
 * into error_buf. */
static int32_t on_chat_message(void *user_data, const wsb_event *event, char *error_buf, size_t error_cap)
{
    chat_app *app = (chat_app *)user_data;
    char local[256];
    if (error_buf == NULL || error_cap == 0) {
        error_buf = local;
        error_cap = sizeof local;
    }
    return chat_handle(app, event, error_buf, error_cap) == 0 ? 0 : 1;
}

/* wsb_event_callback: in callback mode every other event (here: disconnects) arrives here, on a
 * runtime thread. */
static void on_event(void *user_data, const wsb_event *event)
{
    char user[64];
    (void)user_data;
    if (event->kind == WSB_EVENT_DISCONNECT) {
        fprintf(stderr, "chat: session %llu (%s) disconnected\n", (unsigned long long)event->session,
                example_str(event->user, event->user_len, user, sizeof user));
    }
}

/* ---------------------------------------------------------------------------------------------
 * Poll mode: one event from wsb_server_poll_timeout(), on the main thread
 * ------------------------------------------------------------------------------------------- */
static void handle_polled_event(chat_app *app, const wsb_event *event)
{
    char user[64], reason[256];
    switch (event->kind) {
    case WSB_EVENT_APP_MESSAGE:
        if (chat_handle(app, event, reason, sizeof reason) != 0) {
            /* Close the sender's session with an ERROR carrying the reason. The session may already
             * be gone (WSB_ERR_NOT_FOUND); that is worth a log line, not an exit. */
            (void)CHECK(wsb_server_disconnect(app->server, event->session, reason, strlen(reason)));
        }
        break;
    case WSB_EVENT_DISCONNECT:
        fprintf(stderr, "chat: session %llu (%s) disconnected\n", (unsigned long long)event->session,
                example_str(event->user, event->user_len, user, sizeof user));
        break;
    case WSB_EVENT_OVERFLOW:
        fprintf(stderr, "chat: event queue overflowed, %llu events lost\n", (unsigned long long)event->dropped);
        break;
    default:
        break;
    }
}

static unsigned long handled_count(chat_app *app)
{
    unsigned long n;
    pthread_mutex_lock(&app->lock);
    n = app->handled;
    pthread_mutex_unlock(&app->lock);
    return n;
}

int main(int argc, char **argv)
{
    example_options opts;
    chat_app app;
    wsb_config *cfg = NULL;
    int status = 1, started = 0;

    if (example_parse_args(argc, argv, &opts, "N chat messages") != 0) {
        return EXIT_USAGE;
    }
    if (!example_install_signals()) {
        return 1;
    }
    memset(&app, 0, sizeof app);
    if (pthread_mutex_init(&app.lock, NULL) != 0) {
        return 1;
    }
    fprintf(stderr, "chat_server: wsbroker %s (ABI %u), %s mode\n", wsb_version(), (unsigned)wsb_abi_version(),
            opts.mode == WSB_DELIVERY_POLL ? "poll" : "callback");
    (void)CHECK(wsb_set_log_callback(example_log, NULL, WSB_LOG_WARN));

    /* 1. Configuration: listeners + delivery mode (example_common.h), and in callback mode the
     *    event callback that receives everything not handled by an app callback. */
    cfg = example_new_config(&opts);
    if (cfg == NULL) {
        goto out;
    }
    if (opts.mode == WSB_DELIVERY_CALLBACK &&
        !CHECK(wsb_config_set_event_callback(cfg, on_event, &app, NULL))) {
        goto out;
    }

    /* 2. The server. wsb_server_new copies the settings; the config is ours to free. */
    if (!CHECK(wsb_server_new(cfg, &app.server))) {
        goto out;
    }
    wsb_config_free(cfg);
    cfg = NULL;

    /* 3. The application destination. cb NULL = deliver as WSB_EVENT_APP_MESSAGE events. */
    if (!CHECK(wsb_server_handle_app(app.server, CHAT_APP_DESTINATION, strlen(CHAT_APP_DESTINATION),
                                     opts.mode == WSB_DELIVERY_CALLBACK ? on_chat_message : NULL,
                                     opts.mode == WSB_DELIVERY_CALLBACK ? &app : NULL, NULL))) {
        goto out;
    }

    /* 4. Start and announce the ports. */
    if (!example_start(app.server, &opts)) {
        goto out;
    }
    started = 1;

    /* 5. The main loop. */
    while (!example_stop_requested && (opts.exit_after == 0 || handled_count(&app) < opts.exit_after)) {
        if (opts.mode == WSB_DELIVERY_POLL) {
            wsb_event events[MAX_EVENTS];
            size_t count = 0, i;
            /* Waits at most 100 ms so that a signal is noticed promptly. Event pointers stay
             * valid until the next poll on this thread. */
            if (!CHECK(wsb_server_poll_timeout(app.server, events, MAX_EVENTS, 100, &count))) {
                goto out;
            }
            for (i = 0; i < count; i++) {
                handle_polled_event(&app, &events[i]);
            }
        } else {
            example_sleep_ms(20); /* the work happens on the runtime threads */
        }
    }
    status = 0;

out:
    wsb_config_free(cfg); /* NULL is fine */
    if (app.server != NULL) {
        /* stop (1 s grace: clients get their last frames and an ERROR "server shutting down"),
         * then free. After a failed start there is nothing to stop: free only. */
        if (started) {
            if (!example_shutdown(app.server)) {
                status = 1;
            }
        } else if (!CHECK(wsb_server_free(app.server))) {
            status = 1;
        }
        app.server = NULL;
    }
    (void)CHECK(wsb_set_log_callback(NULL, NULL, 0));
    fprintf(stderr, "chat_server: %lu messages handled (%lu published, %lu refused), exit %d\n",
            app.handled, app.published, app.refused, status);
    pthread_mutex_destroy(&app.lock);
    return status;
}
