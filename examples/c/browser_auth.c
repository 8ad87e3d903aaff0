/*
 * browser_auth.c — authenticating browser clients at the WebSocket upgrade.
 *
 * A browser cannot set headers on a WebSocket (new WebSocket(url) sends only its cookies and
 * the URL), so the STOMP CONNECT login is not where a web app proves who the user is. The
 * host registers an upgrade callback (wsb_server_set_upgrade_callback) that looks at the
 * upgrade request before it is answered:
 *   the "session" cookie, else the "token" query parameter (ws://host/ws?token=...)
 *     missing              → HTTP 401 "missing token"     (wsb_upgrade_reject)
 *     not in the table     → HTTP 403 "unknown token"
 *     t-alice / t-bob      → accepted as principal alice / bob (wsb_upgrade_accept)
 * The principal becomes the STOMP session's user: CONNECTED carries user-name:<principal>
 * (whatever login the CONNECT frame claims) and "/user/..." destinations reach it. A SEND to
 * /app/whoami is answered with wsb_server_send_to_user(user, "/queue/whoami", "you are <user>"),
 * which the client receives on its subscription to /user/queue/whoami.
 *
 * The upgrade callback runs on a runtime thread in both modes (the handshake waits for it).
 * --mode poll:     /app/whoami arrives as WSB_EVENT_APP_MESSAGE from wsb_server_poll_timeout.
 * --mode callback: the same event is passed to the event callback on a runtime thread.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/c/browser_auth.c -Ltarget/release -lwsbroker \
 *      -Wl,-rpath,$PWD/target/release -pthread -o browser_auth
 *
 * Exit codes: 0 after SIGINT/SIGTERM or after --exit-after N upgrade decisions, 1 when a
 * wsbroker call fails, 2 on a bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "example_common.h"

#define WHOAMI_APP "/app/whoami"
#define WHOAMI_REPLY "/queue/whoami"
#define MAX_EVENTS 32

/* The host's session store: token → user. A real host would look the token up in its own
 * session database (quickly: the handshake waits for the answer). */
static const struct {
    const char *token;
    const char *user;
} TOKENS[] = {{"t-alice", "alice"}, {"t-bob", "bob"}};

typedef struct browser_app {
    wsb_server *server;
    pthread_mutex_t lock; /* upgrade callbacks run on several runtime threads at once */
    unsigned long decisions, accepted, refused, replies;
} browser_app;

static void count(browser_app *app, unsigned long *counter, int decision)
{
    pthread_mutex_lock(&app->lock);
    (*counter)++;
    if (decision) {
        app->decisions++;
    }
    pthread_mutex_unlock(&app->lock);
}

static const char *user_of_token(const char *token, size_t len)
{
    size_t i;
    for (i = 0; i < sizeof TOKENS / sizeof TOKENS[0]; i++) {
        if (len == strlen(TOKENS[i].token) && memcmp(token, TOKENS[i].token, len) == 0) {
            return TOKENS[i].user;
        }
    }
    return NULL;
}

/* The upgrade callback: request and decision (and the strings the accessors return) are valid
 * only during this call. A failing wsb_upgrade_* call leaves the decision unset: refused (403). */
static void on_upgrade(void *user_data, const wsb_upgrade_request *request, wsb_upgrade_decision *decision)
{
    browser_app *app = (browser_app *)user_data;
    const char *token = NULL, *path = NULL, *peer = NULL, *user;
    size_t token_len = 0, path_len = 0, peer_len = 0;
    if (wsb_upgrade_request_cookie(request, "session", 7, &token, &token_len) != WSB_OK &&
        wsb_upgrade_request_query_param(request, "token", 5, &token, &token_len) != WSB_OK) {
        static const char reason[] = "missing token";
        (void)CHECK(wsb_upgrade_reject(decision, 401, reason, sizeof reason - 1));
        count(app, &app->refused, 1);
        return;
    }
    (void)CHECK(wsb_upgrade_request_path(request, &path, &path_len));
    if (wsb_upgrade_request_remote_addr(request, &peer, &peer_len) != WSB_OK) {
        peer = "(unknown)";
    }
    user = user_of_token(token, token_len);
    if (user == NULL) {
        static const char reason[] = "unknown token";
        (void)CHECK(wsb_upgrade_reject(decision, 403, reason, sizeof reason - 1));
        count(app, &app->refused, 1);
        fprintf(stderr, "browser_auth: upgrade of %s from %s refused (unknown token)\n", path, peer);
        return;
    }
    if (CHECK(wsb_upgrade_accept(decision, user, strlen(user)))) {
        count(app, &app->accepted, 1);
        fprintf(stderr, "browser_auth: upgrade of %s from %s accepted as '%s'\n", path, peer, user);
    }
}

/* Answers a SEND to /app/whoami with a message to the sender's user destination. */
static void on_app_event(browser_app *app, const wsb_event *ev)
{
    char reply[128];
    int len;
    if (ev->kind != WSB_EVENT_APP_MESSAGE) {
        return;
    }
    if (ev->user == NULL) {
        fprintf(stderr, "browser_auth: session %llu has no user\n", (unsigned long long)ev->session);
        return;
    }
    len = snprintf(reply, sizeof reply, "you are %.*s", (int)ev->user_len, ev->user);
    if (len < 0 || (size_t)len >= sizeof reply) {
        return;
    }
    if (CHECK(wsb_server_send_to_user(app->server, ev->user, ev->user_len, WHOAMI_REPLY, strlen(WHOAMI_REPLY),
                                      NULL, 0, (const uint8_t *)reply, (size_t)len))) {
        count(app, &app->replies, 0);
    }
}

/* Callback mode: runs on a runtime thread; the event is valid only during the call. */
static void on_event(void *user_data, const wsb_event *event)
{
    on_app_event((browser_app *)user_data, event);
}

static unsigned long decision_count(browser_app *app)
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
    browser_app app;
    wsb_config *cfg = NULL;
    int status = 1, started = 0, usage;

    usage = example_parse_args(argc, argv, &opts, "N upgrade decisions");
    if (usage != 0) {
        return usage;
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
    if (opts.mode == WSB_DELIVERY_CALLBACK && !CHECK(wsb_config_set_event_callback(cfg, on_event, &app, NULL))) {
        goto out;
    }
    if (!CHECK(wsb_server_new(cfg, &app.server))) {
        goto out;
    }
    wsb_config_free(cfg);
    cfg = NULL;
    /* Registered before start, so no upgrade is ever answered without it. `app` outlives the
     * server: no drop callback needed. */
    if (!CHECK(wsb_server_set_upgrade_callback(app.server, on_upgrade, &app, NULL)) ||
        !CHECK(wsb_server_handle_app(app.server, WHOAMI_APP, strlen(WHOAMI_APP), NULL, NULL, NULL))) {
        goto out;
    }
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
                on_app_event(&app, &events[i]);
            }
        } else {
            example_sleep_ms(20); /* replies are sent from on_event */
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
    fprintf(stderr, "browser_auth: %lu upgrades accepted, %lu refused, %lu replies; exit %d\n", app.accepted,
            app.refused, app.replies, status);
    pthread_mutex_destroy(&app.lock);
    return status;
}
