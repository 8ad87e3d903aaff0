/*
 * game_loop.c — wsbroker inside a fixed-tick (60 Hz) game loop.
 *
 *   clients:   SEND /app/input      {"player":"p1","dx":1,"dy":0}     (dx, dy in -1..1)
 *   each tick: apply the inputs to a small array of player positions, then publish a snapshot
 *              {"tick":42,"players":[{"id":"p1","x":1,"y":0}]} to /topic/state
 *   clients:   SUBSCRIBE /topic/state → one MESSAGE per tick
 *
 * --mode poll (the usual choice for a game): inputs arrive as WSB_EVENT_APP_MESSAGE events and
 *   are drained with the non-blocking wsb_server_poll() at the start of each tick, so the game
 *   state is only ever touched by the main thread — no locking. A wake callback is registered
 *   to show the hook an engine would use to schedule a poll when it sleeps between frames; here
 *   it only counts wake-ups (printed at exit). Malformed inputs are ignored (logged).
 * --mode callback: inputs arrive through a wsb_app_callback on the broker's runtime threads, at
 *   any time during the tick, so the shared state is protected by a mutex. Malformed inputs
 *   are refused: the sender gets an ERROR.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   cc -std=c99 -Iinclude examples/c/game_loop.c -Ltarget/release -lwsbroker \
 *      -Wl,-rpath,$PWD/target/release -o game_loop
 *
 * Exit codes: 0 after SIGINT/SIGTERM or after --exit-after N ticks, 1 when a wsbroker call
 * fails, 2 on a bad command line.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>

#include "example_common.h"

#define TICK_HZ 60
#define TICK_US (1000000 / TICK_HZ)
#define INPUT_DESTINATION "/app/input"
#define STATE_TOPIC "/topic/state"
#define MAX_PLAYERS 8
#define MAX_PLAYER_ID 31
#define MAX_EVENTS 32
#define MAX_POLLS_PER_TICK 8 /* bounds the time a tick spends on input */

typedef struct player {
    char id[MAX_PLAYER_ID + 1];
    long x, y;
} player;

typedef struct game {
    wsb_server *server;
    int locked;            /* callback mode: inputs come from runtime threads → use `lock` */
    pthread_mutex_t lock;  /* guards everything below in callback mode */
    player players[MAX_PLAYERS];
    size_t player_count;
    unsigned long inputs_applied, inputs_rejected;
    unsigned long sessions_connected, sessions_disconnected;
} game;

/* Wake-up counter: heap-allocated and released by its drop callback, which wsbroker runs exactly
 * once when it no longer needs it (on wsb_server_free). */
typedef struct wake_counter {
    pthread_mutex_t lock;
    unsigned long wakeups;
} wake_counter;

static void game_lock(game *g)
{
    if (g->locked) {
        pthread_mutex_lock(&g->lock);
    }
}

static void game_unlock(game *g)
{
    if (g->locked) {
        pthread_mutex_unlock(&g->lock);
    }
}

/* ---------------------------------------------------------------------------------------------
 * A tiny hand-written scan of the input JSON (no JSON library; use a real parser in production)
 * ------------------------------------------------------------------------------------------- */

static size_t skip_space(const uint8_t *s, size_t len, size_t pos)
{
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r' || s[pos] == '\n')) {
        pos++;
    }
    return pos;
}

/* Position just after `"key":` (and spaces), or `len` when absent. */
static size_t find_value(const uint8_t *s, size_t len, const char *key)
{
    size_t key_len = strlen(key), i, pos;
    for (i = 0; i + key_len + 2 <= len; i++) {
        if (s[i] == '"' && memcmp(s + i + 1, key, key_len) == 0 && s[i + 1 + key_len] == '"') {
            pos = skip_space(s, len, i + key_len + 2);
            if (pos < len && s[pos] == ':') {
                return skip_space(s, len, pos + 1);
            }
        }
    }
    return len;
}

static int parse_int_field(const uint8_t *s, size_t len, const char *key, long *out)
{
    size_t pos = find_value(s, len, key);
    long sign = 1, value = 0;
    int digits = 0;
    if (pos < len && s[pos] == '-') {
        sign = -1;
        pos++;
    }
    while (pos < len && s[pos] >= '0' && s[pos] <= '9' && digits < 9) {
        value = value * 10 + (s[pos] - '0');
        digits++;
        pos++;
    }
    if (digits == 0 || (pos < len && s[pos] >= '0' && s[pos] <= '9')) {
        return 0;
    }
    *out = sign * value;
    return 1;
}

/* Player ids are limited to [A-Za-z0-9_-]{1,31}, so they can go into the snapshot unescaped. */
static int parse_player_field(const uint8_t *s, size_t len, char *out)
{
    size_t pos = find_value(s, len, "player"), n = 0;
    if (pos >= len || s[pos] != '"') {
        return 0;
    }
    pos++;
    while (pos < len && s[pos] != '"') {
        uint8_t c = s[pos];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok || n == MAX_PLAYER_ID) {
            return 0;
        }
        out[n++] = (char)c;
        pos++;
    }
    if (pos >= len || n == 0) {
        return 0;
    }
    out[n] = '\0';
    return 1;
}

/* Applies one input message. Returns 0 when applied, -1 with a reason in `err`. The caller
 * holds the game lock (callback mode). */
static int apply_input(game *g, const uint8_t *body, size_t len, char *err, size_t err_cap)
{
    char id[MAX_PLAYER_ID + 1];
    long dx = 0, dy = 0;
    size_t i;
    player *p = NULL;

    if (!parse_player_field(body, len, id)) {
        snprintf(err, err_cap, "invalid input: \"player\" must be a string of [A-Za-z0-9_-]{1,%d}", MAX_PLAYER_ID);
        return -1;
    }
    if (!parse_int_field(body, len, "dx", &dx) || !parse_int_field(body, len, "dy", &dy) || dx < -1 ||
        dx > 1 || dy < -1 || dy > 1) {
        snprintf(err, err_cap, "invalid input: \"dx\" and \"dy\" must be integers in -1..1");
        return -1;
    }
    for (i = 0; i < g->player_count; i++) {
        if (strcmp(g->players[i].id, id) == 0) {
            p = &g->players[i];
            break;
        }
    }
    if (p == NULL) {
        if (g->player_count == MAX_PLAYERS) {
            snprintf(err, err_cap, "the game is full (%d players)", MAX_PLAYERS);
            return -1;
        }
        p = &g->players[g->player_count++];
        memset(p, 0, sizeof *p);
        memcpy(p->id, id, strlen(id) + 1);
    }
    p->x += dx;
    p->y += dy;
    return 0;
}

/* Writes the world-state snapshot; returns its length (truncation cannot happen: the buffer
 * is sized for MAX_PLAYERS entries). */
static size_t build_snapshot(game *g, unsigned long tick, char *buf, size_t cap)
{
    size_t used = 0, i;
    used += (size_t)snprintf(buf + used, cap - used, "{\"tick\":%lu,\"players\":[", tick);
    for (i = 0; i < g->player_count && used < cap; i++) {
        used += (size_t)snprintf(buf + used, cap - used, "%s{\"id\":\"%s\",\"x\":%ld,\"y\":%ld}", i ? "," : "",
                                 g->players[i].id, g->players[i].x, g->players[i].y);
    }
    if (used < cap) {
        used += (size_t)snprintf(buf + used, cap - used, "]}");
    }
    return used < cap ? used : cap - 1;
}

/* ---------------------------------------------------------------------------------------------
 * Callbacks (they run on the broker's runtime threads)
 * ------------------------------------------------------------------------------------------- */

/* Poll mode: the event queue went from empty to non-empty. Must be quick and must not block
 * for long or call back into a wsbroker poll; an engine would post a "poll now" message to its
 * main loop here. */
static void on_wake(void *user_data)
{
    wake_counter *wc = (wake_counter *)user_data;
    pthread_mutex_lock(&wc->lock);
    wc->wakeups++;
    pthread_mutex_unlock(&wc->lock);
}

/* How many times drop_wake_counter ran (checked at exit: must be exactly once). */
static unsigned wake_drops = 0;

/* Drop callback of the wake user_data: runs exactly once, on wsb_server_free. */
static void drop_wake_counter(void *user_data)
{
    wake_counter *wc = (wake_counter *)user_data;
    pthread_mutex_destroy(&wc->lock);
    free(wc);
    wake_drops++; /* no other thread is involved any more at this point */
}

/* Callback mode: one input SEND to /app/input. */
static int32_t on_input(void *user_data, const wsb_event *event, char *error_buf, size_t error_cap)
{
    game *g = (game *)user_data;
    char local[160];
    int rc;
    if (error_buf == NULL || error_cap == 0) {
        error_buf = local;
        error_cap = sizeof local;
    }
    game_lock(g);
    rc = apply_input(g, event->body, event->body_len, error_buf, error_cap);
    if (rc == 0) {
        g->inputs_applied++;
    } else {
        g->inputs_rejected++;
    }
    game_unlock(g);
    return rc == 0 ? 0 : 1;
}

/* Callback mode: every other event (connects are not deferred here, so only disconnects). */
static void on_event(void *user_data, const wsb_event *event)
{
    game *g = (game *)user_data;
    if (event->kind == WSB_EVENT_DISCONNECT) {
        game_lock(g);
        g->sessions_disconnected++;
        game_unlock(g);
    }
}

/* ---------------------------------------------------------------------------------------------
 * Poll mode: drain the event queue at the start of a tick (main thread only, no lock needed)
 * ------------------------------------------------------------------------------------------- */
static int poll_inputs(game *g)
{
    wsb_event events[MAX_EVENTS];
    char err[160];
    int round;
    for (round = 0; round < MAX_POLLS_PER_TICK; round++) {
        size_t count = 0, i;
        if (!CHECK(wsb_server_poll(g->server, events, MAX_EVENTS, &count))) {
            return 0;
        }
        for (i = 0; i < count; i++) {
            const wsb_event *ev = &events[i];
            if (ev->kind == WSB_EVENT_APP_MESSAGE) {
                if (apply_input(g, ev->body, ev->body_len, err, sizeof err) == 0) {
                    g->inputs_applied++;
                } else {
                    g->inputs_rejected++;
                    fprintf(stderr, "game_loop: session %llu: input ignored: %s\n",
                            (unsigned long long)ev->session, err);
                }
            } else if (ev->kind == WSB_EVENT_DISCONNECT) {
                g->sessions_disconnected++;
            } else if (ev->kind == WSB_EVENT_OVERFLOW) {
                fprintf(stderr, "game_loop: %llu events lost (queue full)\n", (unsigned long long)ev->dropped);
            }
        }
        if (count < MAX_EVENTS) {
            break; /* drained */
        }
    }
    return 1;
}

int main(int argc, char **argv)
{
    example_options opts;
    game g;
    wake_counter *wc = NULL;
    wsb_config *cfg = NULL;
    unsigned long tick = 0, wakeups = 0, publish_failures = 0;
    int64_t next_tick_us;
    int status = 1, started = 0;
    char snapshot[128 + MAX_PLAYERS * 96];

    if (example_parse_args(argc, argv, &opts, "N ticks (60 per second)") != 0) {
        return EXIT_USAGE;
    }
    if (!example_install_signals()) {
        return 1;
    }
    memset(&g, 0, sizeof g);
    g.locked = (opts.mode == WSB_DELIVERY_CALLBACK);
    if (pthread_mutex_init(&g.lock, NULL) != 0) {
        return 1;
    }
    (void)CHECK(wsb_set_log_callback(example_log, NULL, WSB_LOG_WARN));

    cfg = example_new_config(&opts);
    if (cfg == NULL) {
        goto out;
    }
    if (opts.mode == WSB_DELIVERY_POLL) {
        wc = (wake_counter *)calloc(1, sizeof *wc);
        if (wc == NULL || pthread_mutex_init(&wc->lock, NULL) != 0) {
            free(wc);
            wc = NULL;
            goto out;
        }
        /* From here on the drop callback owns wc: it is freed by wsbroker, also when
         * wsb_server_new fails (the config then still holds it and wsb_config_free drops it). */
        if (!CHECK(wsb_config_set_wake_callback(cfg, on_wake, wc, drop_wake_counter))) {
            drop_wake_counter(wc); /* not registered: still ours */
            wc = NULL;
            goto out;
        }
    } else if (!CHECK(wsb_config_set_event_callback(cfg, on_event, &g, NULL))) {
        goto out;
    }
    if (!CHECK(wsb_server_new(cfg, &g.server))) {
        goto out;
    }
    wsb_config_free(cfg); /* the callbacks moved to the server */
    cfg = NULL;

    if (!CHECK(wsb_server_handle_app(g.server, INPUT_DESTINATION, strlen(INPUT_DESTINATION),
                                     opts.mode == WSB_DELIVERY_CALLBACK ? on_input : NULL,
                                     opts.mode == WSB_DELIVERY_CALLBACK ? &g : NULL, NULL))) {
        goto out;
    }
    if (!example_start(g.server, &opts)) {
        goto out;
    }
    started = 1;

    /* The fixed-tick loop: input → simulate → publish → sleep until the next tick. */
    next_tick_us = example_now_us();
    while (!example_stop_requested && (opts.exit_after == 0 || tick < opts.exit_after)) {
        size_t len;
        wsb_result rc;
        int64_t now;

        if (opts.mode == WSB_DELIVERY_POLL && !poll_inputs(&g)) {
            goto out;
        }
        tick++;
        game_lock(&g);
        len = build_snapshot(&g, tick, snapshot, sizeof snapshot);
        game_unlock(&g);
        /* Topics never block a publisher: a slow subscriber is the broker's problem (it is
         * disconnected past its outbound limits), so the loop keeps its rhythm. */
        rc = wsb_server_publish(g.server, STATE_TOPIC, strlen(STATE_TOPIC), NULL, 0, (const uint8_t *)snapshot, len);
        if (!CHECK(rc)) {
            publish_failures++;
        }

        next_tick_us += TICK_US;
        now = example_now_us();
        if (now - next_tick_us > 10 * TICK_US) {
            next_tick_us = now; /* far behind (debugger, valgrind): skip ahead, do not spiral */
        }
        example_sleep_us(next_tick_us - now);
    }
    status = 0;

out:
    wsb_config_free(cfg); /* NULL is fine; runs the wake drop when the server was never made */
    if (g.server != NULL) {
        if (started && !CHECK(wsb_server_stop(g.server, 1000))) {
            status = 1;
        }
        /* After stop no callback runs any more: reading the wake counter is safe here, and it
         * is still alive — its drop callback runs inside wsb_server_free below. */
        if (wc != NULL) {
            pthread_mutex_lock(&wc->lock);
            wakeups = wc->wakeups;
            pthread_mutex_unlock(&wc->lock);
        }
        if (!CHECK(wsb_server_free(g.server))) {
            status = 1;
        }
        g.server = NULL;
        if (wc != NULL && wake_drops != 1) {
            fprintf(stderr, "game_loop: the wake callback's drop ran %u times, expected once\n", wake_drops);
            status = 1;
        }
        wc = NULL; /* freed by drop_wake_counter */
    }
    (void)CHECK(wsb_set_log_callback(NULL, NULL, 0));
    printf("game_loop: %lu ticks, %lu inputs applied, %lu rejected, %lu disconnects, %lu wake-ups, "
           "%lu publish failures\n",
           tick, g.inputs_applied, g.inputs_rejected, g.sessions_disconnected, wakeups, publish_failures);
    fflush(stdout);
    pthread_mutex_destroy(&g.lock);
    return status;
}
