/*
 * example_common.h — small helpers shared by the wsbroker C examples (chat_server.c,
 * game_loop.c, auth.c). Everything here is plain C99 + POSIX and uses only the public API of
 * <wsbroker.h>; copy it next to your own program if you like.
 *
 *   - CHECK(call): runs a wsbroker call, prints wsb_result_str() and wsb_last_error() on failure
 *   - example_parse_args(): --port N, --tcp-port N, --mode poll|callback, --exit-after N
 *   - example_install_signals(): SIGINT/SIGTERM set a flag that the main loop checks
 *   - example_new_config() / example_start(): the configuration and start-up every example shares
 *   - example_now_us() / example_sleep_us() (and _ms): monotonic time helpers
 *
 * Define _POSIX_C_SOURCE (200809L) before including this header: it needs sigaction,
 * clock_gettime and nanosleep.
 *
 * Exit codes used by the examples: 0 = clean stop (signal or --exit-after reached),
 * 1 = a wsbroker call failed, 2 = bad command line.
 */
#ifndef WSBROKER_EXAMPLE_COMMON_H
#define WSBROKER_EXAMPLE_COMMON_H

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "wsbroker.h"

#define EXIT_USAGE 2

/* ---------------------------------------------------------------------------------------------
 * Result checking
 * ------------------------------------------------------------------------------------------- */

/* Returns 1 when `result` is WSB_OK; otherwise prints what failed, the result code's static text
 * and the thread-local detail message of the failing call, and returns 0. */
static inline int example_check(wsb_result result, const char *what, const char *file, int line)
{
    char detail[512];
    if (result == WSB_OK) {
        return 1;
    }
    detail[0] = '\0';
    (void)wsb_last_error(detail, sizeof detail);
    fprintf(stderr, "%s:%d: %s failed: %s (%s)\n", file, line, what,
            wsb_result_str((int32_t)result), detail[0] ? detail : "no detail");
    return 0;
}

/* CHECK(call) evaluates to 1 on success, 0 (after printing the error) on failure. */
#define CHECK(call) example_check((call), #call, __FILE__, __LINE__)

/* ---------------------------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------------------------- */

typedef struct example_options {
    unsigned port;          /* --port N: WebSocket port on 127.0.0.1 (0 = any free port)  */
    int tcp_enabled;        /* --tcp-port N given: also listen for STOMP over plain TCP     */
    unsigned tcp_port;      /* its port (0 = any free port)                                  */
    uint32_t mode;          /* --mode poll|callback: WSB_DELIVERY_POLL or WSB_DELIVERY_CALLBACK */
    unsigned long exit_after; /* --exit-after N: stop after N units of work (0 = run until a signal) */
} example_options;

static inline int example_parse_number(const char *text, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    unsigned long value;
    if (text == NULL || *text == '\0' || *text == '-') {
        return 0;
    }
    errno = 0;
    value = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || value > max) {
        return 0;
    }
    *out = value;
    return 1;
}

static inline void example_usage(const char *prog, const char *exit_after_unit)
{
    fprintf(stderr,
            "usage: %s [--port N] [--tcp-port N] [--mode poll|callback] [--exit-after N]\n"
            "  --port N        WebSocket STOMP port on 127.0.0.1 (default 0: any free port)\n"
            "  --tcp-port N    also accept STOMP over plain TCP on 127.0.0.1:N (0: any free port)\n"
            "  --mode M        event delivery: poll (main loop polls, default) or callback\n"
            "  --exit-after N  exit 0 after %s (default 0: run until SIGINT/SIGTERM)\n",
            prog, exit_after_unit);
}

/* Returns 0 when the command line is valid, EXIT_USAGE otherwise (after printing the usage). */
static inline int example_parse_args(int argc, char **argv, example_options *opts, const char *exit_after_unit)
{
    int i;
    memset(opts, 0, sizeof *opts);
    opts->mode = WSB_DELIVERY_POLL;
    for (i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = (i + 1 < argc) ? argv[i + 1] : NULL;
        unsigned long n = 0;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            example_usage(argv[0], exit_after_unit);
            return EXIT_USAGE;
        } else if (strcmp(arg, "--port") == 0 && example_parse_number(value, 65535, &n)) {
            opts->port = (unsigned)n;
        } else if (strcmp(arg, "--tcp-port") == 0 && example_parse_number(value, 65535, &n)) {
            opts->tcp_enabled = 1;
            opts->tcp_port = (unsigned)n;
        } else if (strcmp(arg, "--mode") == 0 && value != NULL && strcmp(value, "poll") == 0) {
            opts->mode = WSB_DELIVERY_POLL;
        } else if (strcmp(arg, "--mode") == 0 && value != NULL && strcmp(value, "callback") == 0) {
            opts->mode = WSB_DELIVERY_CALLBACK;
        } else if (strcmp(arg, "--exit-after") == 0 && example_parse_number(value, 1000000000UL, &n)) {
            opts->exit_after = n;
        } else {
            fprintf(stderr, "%s: bad argument '%s'%s%s\n", argv[0], arg,
                    value ? " " : "", value ? value : "");
            example_usage(argv[0], exit_after_unit);
            return EXIT_USAGE;
        }
        i++; /* every option takes one value */
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Signals: SIGINT/SIGTERM only set a flag (async-signal-safe); the main loop notices it within
 * one poll timeout / tick and stops the server from the main thread.
 * ------------------------------------------------------------------------------------------- */

static volatile sig_atomic_t example_stop_requested = 0;

static inline void example_on_signal(int signo)
{
    (void)signo;
    example_stop_requested = 1;
}

static inline int example_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = example_on_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) {
        perror("sigaction");
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Time
 * ------------------------------------------------------------------------------------------- */

static inline int64_t example_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static inline int64_t example_now_ms(void)
{
    return example_now_us() / 1000;
}

static inline void example_sleep_us(int64_t us)
{
    struct timespec ts;
    if (us <= 0) {
        return;
    }
    ts.tv_sec = (time_t)(us / 1000000);
    ts.tv_nsec = (long)(us % 1000000) * 1000L;
    /* A signal interrupts the sleep (EINTR): fine, the caller re-checks the stop flag. */
    (void)nanosleep(&ts, NULL);
}

static inline void example_sleep_ms(int64_t ms)
{
    example_sleep_us(ms * 1000);
}

/* ---------------------------------------------------------------------------------------------
 * Broker log lines (process-wide): warnings and errors go to stderr.
 * ------------------------------------------------------------------------------------------- */

static inline void example_log(void *user_data, int32_t level, const char *target, const char *message)
{
    static const char *const names[] = {"?", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    (void)user_data;
    fprintf(stderr, "[wsbroker %s %s] %s\n", (level >= 1 && level <= 5) ? names[level] : "?",
            target ? target : "", message ? message : "");
}

/* ---------------------------------------------------------------------------------------------
 * Configuration and start-up shared by the examples
 * ------------------------------------------------------------------------------------------- */

/* A new configuration with the listeners and delivery mode from the command line, or NULL. */
static inline wsb_config *example_new_config(const example_options *opts)
{
    wsb_config *cfg = NULL;
    char addr[64];
    int len;
    if (!CHECK(wsb_config_new(&cfg))) {
        return NULL;
    }
    len = snprintf(addr, sizeof addr, "127.0.0.1:%u", opts->port);
    if (!CHECK(wsb_config_set_listen(cfg, addr, (size_t)len))) {
        goto fail;
    }
    if (opts->tcp_enabled) {
        len = snprintf(addr, sizeof addr, "127.0.0.1:%u", opts->tcp_port);
        if (!CHECK(wsb_config_set_tcp_listen(cfg, addr, (size_t)len))) {
            goto fail;
        }
    }
    if (!CHECK(wsb_config_set_delivery_mode(cfg, opts->mode))) {
        goto fail;
    }
    return cfg;
fail:
    wsb_config_free(cfg);
    return NULL;
}

/* Starts the server and prints the bound listeners in the format test scripts parse:
 *   wsbroker listening websocket ws://127.0.0.1:PORT/ws
 *   wsbroker listening tcp 127.0.0.1:PORT
 * Returns 1 on success. */
static inline int example_start(wsb_server *server, const example_options *opts)
{
    uint16_t port = 0;
    if (!CHECK(wsb_server_start(server)) || !CHECK(wsb_server_local_port(server, &port))) {
        return 0;
    }
    printf("wsbroker listening websocket ws://127.0.0.1:%u/ws\n", (unsigned)port);
    if (opts->tcp_enabled) {
        if (!CHECK(wsb_server_tcp_port(server, &port))) {
            return 0;
        }
        printf("wsbroker listening tcp 127.0.0.1:%u\n", (unsigned)port);
    }
    fflush(stdout);
    return 1;
}

/* Stops (1 s grace for clients to receive their final frames) and frees the server.
 * Returns 1 when both calls succeeded. */
static inline int example_shutdown(wsb_server *server)
{
    int ok = 1;
    if (server == NULL) {
        return 1;
    }
    ok &= CHECK(wsb_server_stop(server, 1000));
    ok &= CHECK(wsb_server_free(server));
    return ok;
}

/* Copies an event string (pointer + length, may be absent) into a printable buffer. */
static inline const char *example_str(const char *s, size_t len, char *buf, size_t cap)
{
    if (s == NULL) {
        return "(none)";
    }
    if (len >= cap) {
        len = cap - 1;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';
    return buf;
}

#endif /* WSBROKER_EXAMPLE_COMMON_H */
