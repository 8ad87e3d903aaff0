/*
 * auth.c — the host program decides who may connect and who may subscribe where.
 *
 * With wsb_config_set_defer(cfg, true, true) every CONNECT and every SUBSCRIBE waits for an
 * answer from the host:
 *   CONNECT    passcode "secret"  → wsb_server_accept(session, user = login)
 *                                   (the client's CONNECTED frame carries user-name:<login>)
 *              anything else      → wsb_server_reject(session, "bad credentials")
 *   SUBSCRIBE  /topic/admin or /topic/admin/... by a user other than "admin"
 *                                 → wsb_server_answer_subscribe(session, false, "...")  (ERROR)
 *              anything else      → allowed
 * A question not answered within the decision timeout (default 10 s) is refused by the broker.
 *
 * --mode poll:     the questions arrive as WSB_EVENT_CONNECT / WSB_EVENT_SUBSCRIBE events and
 *                  are answered from the main loop right after wsb_server_poll_timeout(); a real
 *                  host could also hand them to a worker (e.g. a database lookup) and answer
 *                  later, from any thread.
 * --mode callback: the same events are passed to a wsb_event_callback on a runtime thread and
 *                  answered from inside the callback.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/c/auth.c -Ltarget/release -lwsbroker \
 *      -Wl,-rpath,$PWD/target/release -o auth
 *
 * Exit codes: 0 after SIGINT/SIGTERM or after --exit-after N decisions (connects and
 * subscribes answered), 1 when a wsbroker call fails, 2 on a bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "example_common.h"

#define SECRET "secret"
#define ADMIN_USER "admin"
#define ADMIN_TOPIC "/topic/admin"
#define MAX_EVENTS 32

typedef struct auth_app {
    wsb_server *server;
    pthread_mutex_t lock; /* the counters are updated on runtime threads in callback mode */
    unsigned long decisions, accepted, rejected, subscribes_allowed, subscribes_refused;
} auth_app;

/* Compares a (pointer, length) string from an event with a C string. */
static int str_eq(const char *s, size_t len, const char *lit)
{
    return s != NULL && len == strlen(lit) && memcmp(s, lit, len) == 0;
}

/* True for "/topic/admin" and "/topic/admin/<anything>", i.e. the wildcard pattern /topic/admin/ + "**". */
static int is_admin_destination(const char *dest, size_t len)
{
    const size_t n = strlen(ADMIN_TOPIC);
    return dest != NULL && len >= n && memcmp(dest, ADMIN_TOPIC, n) == 0 && (len == n || dest[n] == '/');
}

static void count(auth_app *app, unsigned long *counter)
{
    pthread_mutex_lock(&app->lock);
    (*counter)++;
    app->decisions++;
    pthread_mutex_unlock(&app->lock);
}

/* Answers one event. Used from the main loop (poll mode) and from the event callback (callback
 * mode): the wsb_server_accept/reject/answer_subscribe calls work from any thread, including
 * inside a callback. A failing answer (e.g. WSB_ERR_NOT_FOUND: the client left or the decision
 * timed out) is logged, not fatal. */
static void decide(auth_app *app, const wsb_event *ev)
{
    char a[64], b[128];
    switch (ev->kind) {
    case WSB_EVENT_CONNECT:
        if (str_eq(ev->passcode, ev->passcode_len, SECRET)) {
            /* user = login; a missing or empty login connects without a user name. */
            const char *user = (ev->login != NULL && ev->login_len > 0) ? ev->login : NULL;
            (void)CHECK(wsb_server_accept(app->server, ev->session, user, user ? ev->login_len : 0));
            count(app, &app->accepted);
            fprintf(stderr, "auth: session %llu from %s accepted as '%s'\n", (unsigned long long)ev->session,
                    example_str(ev->remote_addr, ev->remote_addr_len, b, sizeof b),
                    example_str(ev->login, ev->login_len, a, sizeof a));
        } else {
            static const char msg[] = "bad credentials";
            (void)CHECK(wsb_server_reject(app->server, ev->session, msg, sizeof msg - 1));
            count(app, &app->rejected);
            fprintf(stderr, "auth: session %llu (login '%s') rejected\n", (unsigned long long)ev->session,
                    example_str(ev->login, ev->login_len, a, sizeof a));
        }
        break;
    case WSB_EVENT_SUBSCRIBE:
        if (is_admin_destination(ev->destination, ev->destination_len) && !str_eq(ev->user, ev->user_len, ADMIN_USER)) {
            static const char msg[] = "not allowed: " ADMIN_TOPIC "/** is for user '" ADMIN_USER "' only";
            (void)CHECK(wsb_server_answer_subscribe(app->server, ev->session, false, msg, sizeof msg - 1));
            count(app, &app->subscribes_refused);
        } else {
            (void)CHECK(wsb_server_answer_subscribe(app->server, ev->session, true, NULL, 0));
            count(app, &app->subscribes_allowed);
        }
        fprintf(stderr, "auth: session %llu (%s) subscribe %s\n", (unsigned long long)ev->session,
                example_str(ev->user, ev->user_len, a, sizeof a),
                example_str(ev->destination, ev->destination_len, b, sizeof b));
        break;
    case WSB_EVENT_DISCONNECT:
        fprintf(stderr, "auth: session %llu (%s) disconnected\n", (unsigned long long)ev->session,
                example_str(ev->user, ev->user_len, a, sizeof a));
        break;
    case WSB_EVENT_OVERFLOW:
        /* Lost questions are refused by the broker when their decision timeout expires. */
        fprintf(stderr, "auth: %llu events lost (queue full)\n", (unsigned long long)ev->dropped);
        break;
    default:
        break;
    }
}

/* Callback mode: runs on a runtime thread; the event is valid only during the call. */
static void on_event(void *user_data, const wsb_event *event)
{
    decide((auth_app *)user_data, event);
}

static unsigned long decision_count(auth_app *app)
{
    unsigned long n;
    pthread_mutex_lock(&app->lock);
    n = app->decisions;
    pthread_mutex_unlock(&app->lock);
    return n;
}

int main(int argc, char **argv)
{
    example_options opts;
    auth_app app;
    wsb_config *cfg = NULL;
    int status = 1, started = 0;

    if (example_parse_args(argc, argv, &opts, "N connect/subscribe decisions") != 0) {
        return EXIT_USAGE;
    }
    if (!example_install_signals()) {
        return 1;
    }
    memset(&app, 0, sizeof app);
    if (pthread_mutex_init(&app.lock, NULL) != 0) {
        return 1;
    }
    (void)CHECK(wsb_set_log_callback(example_log, NULL, WSB_LOG_WARN));

    cfg = example_new_config(&opts);
    if (cfg == NULL) {
        goto out;
    }
    /* Both decisions go to the host (events), none is taken by the broker's defaults. */
    if (!CHECK(wsb_config_set_defer(cfg, true, true)) || !CHECK(wsb_config_set_decision_timeout(cfg, 10000))) {
        goto out;
    }
    if (opts.mode == WSB_DELIVERY_CALLBACK && !CHECK(wsb_config_set_event_callback(cfg, on_event, &app, NULL))) {
        goto out;
    }
    if (!CHECK(wsb_server_new(cfg, &app.server))) {
        goto out;
    }
    wsb_config_free(cfg);
    cfg = NULL;
    if (!example_start(app.server, &opts)) {
        goto out;
    }
    started = 1;

    while (!example_stop_requested && (opts.exit_after == 0 || decision_count(&app) < opts.exit_after)) {
        if (opts.mode == WSB_DELIVERY_POLL) {
            wsb_event events[MAX_EVENTS];
            size_t n = 0, i;
            if (!CHECK(wsb_server_poll_timeout(app.server, events, MAX_EVENTS, 100, &n))) {
                goto out;
            }
            for (i = 0; i < n; i++) {
                decide(&app, &events[i]);
            }
        } else {
            example_sleep_ms(20); /* decisions are taken in on_event */
        }
    }
    status = 0;

out:
    wsb_config_free(cfg);
    if (app.server != NULL) {
        if (started && !CHECK(wsb_server_stop(app.server, 1000))) {
            status = 1;
        }
        if (!CHECK(wsb_server_free(app.server))) {
            status = 1;
        }
        app.server = NULL;
    }
    (void)CHECK(wsb_set_log_callback(NULL, NULL, 0));
    fprintf(stderr, "auth: %lu decisions: %lu connects accepted, %lu rejected, %lu subscribes allowed, %lu refused; exit %d\n",
            app.decisions, app.accepted, app.rejected, app.subscribes_allowed, app.subscribes_refused, status);
    pthread_mutex_destroy(&app.lock);
    return status;
}
