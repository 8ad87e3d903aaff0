/*
 * Embedding safety, checked from a C host the way a game server or desktop app would embed
 * wsbroker (built and run by scripts/c-tests.sh, natively and with AddressSanitizer):
 *
 *  1. SIGPIPE never kills the host: this program keeps the signal's default action (it does
 *     NOT ignore it) while clients reset their TCP connections (SO_LINGER 0) in the middle of
 *     a stream the host keeps publishing into.
 *  2. Absurd lengths are refused with a result code, never an abort or a crash.
 *  3. Publishing before wsb_server_start is WSB_ERR_NOT_RUNNING, as documented.
 *  4. wsb_server_free racing publishing threads is safe: the publishers get
 *     WSB_ERR_NOT_RUNNING once the server is gone (ASan finds no use-after-free).
 *  5. A header value with a NUL (frame injection) is refused with WSB_ERR_INVALID_ARGUMENT.
 *  6. With a data dir (wsb_config_set_data_dir), a history outlives the server: a new server
 *     on the same directory reads the same messages, offsets and epoch.
 *
 * Exit status 0 when every check passed; a check that fails prints what and exits 1.
 */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wsbroker.h"

static int failures = 0;

#define CHECK(cond, ...)                                                                      \
    do {                                                                                      \
        if (!(cond)) {                                                                        \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                              \
            fprintf(stderr, __VA_ARGS__);                                                     \
            fprintf(stderr, "\n");                                                            \
            failures++;                                                                       \
        }                                                                                     \
    } while (0)

static const char TOPIC[] = "/topic/stream";

static struct wsb_server *new_server(void) {
    struct wsb_config *config = NULL;
    struct wsb_server *server = NULL;
    if (wsb_config_new(&config) != WSB_OK) return NULL;
    const char ws[] = "127.0.0.1:0";
    const char tcp[] = "127.0.0.1:0";
    wsb_config_set_listen(config, ws, sizeof ws - 1);
    wsb_config_set_tcp_listen(config, tcp, sizeof tcp - 1);
    enum wsb_result r = wsb_server_new(config, &server);
    wsb_config_free(config);
    return r == WSB_OK ? server : NULL;
}

static int connect_tcp(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct publisher {
    struct wsb_server *server;
    volatile int stop;
    long published;
    long not_running;
    long other_errors;
};

static void *publish_loop(void *arg) {
    struct publisher *p = arg;
    static uint8_t body[1024];
    while (!p->stop) {
        enum wsb_result r =
            wsb_server_publish(p->server, TOPIC, sizeof TOPIC - 1, NULL, 0, body, sizeof body);
        if (r == WSB_OK) {
            p->published++;
        } else if (r == WSB_ERR_NOT_RUNNING) {
            p->not_running++;
            break; /* freed: every later call gives the same */
        } else if (r != WSB_ERR_BACKPRESSURE) {
            p->other_errors++;
        }
    }
    return NULL;
}

/* 1. Clients that subscribe, start reading, then reset while the host publishes. */
static void sigpipe_is_not_raised(void) {
    struct sigaction current;
    sigaction(SIGPIPE, NULL, &current);
    CHECK(current.sa_handler == SIG_DFL, "the test needs SIGPIPE's default action");
    struct wsb_server *server = new_server();
    CHECK(server != NULL, "server created");
    if (!server) return;
    CHECK(wsb_server_start(server) == WSB_OK, "started");
    uint16_t port = 0;
    wsb_server_tcp_port(server, &port);
    struct publisher p = {server, 0, 0, 0, 0};
    pthread_t thread;
    pthread_create(&thread, NULL, publish_loop, &p);
    const char hello[] =
        "CONNECT\naccept-version:1.2\nhost:x\n\n\0SUBSCRIBE\nid:1\ndestination:/topic/stream\n\n";
    for (int i = 0; i < 40; i++) {
        int fd = connect_tcp(port);
        CHECK(fd >= 0, "client %d connects", i);
        if (fd < 0) continue;
        if (write(fd, hello, sizeof hello) != (ssize_t)sizeof hello) {
            CHECK(0, "client %d writes its SUBSCRIBE", i);
        }
        char buf[4096];
        for (int reads = 0; reads < 4; reads++) {
            if (read(fd, buf, sizeof buf) <= 0) break;
        }
        struct linger reset = {1, 0}; /* close() sends RST: writes that follow get EPIPE */
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        close(fd);
    }
    p.stop = 1;
    pthread_join(thread, NULL);
    CHECK(p.published > 0, "the host published (%ld)", p.published);
    CHECK(p.other_errors == 0, "no unexpected publish errors (%ld)", p.other_errors);
    wsb_stats stats;
    CHECK(wsb_server_stats(server, &stats) == WSB_OK, "stats");
    CHECK(stats.messages_out > 0, "messages went out before the resets (%llu)",
          (unsigned long long)stats.messages_out);
    CHECK(wsb_server_free(server) == WSB_OK, "freed");
    printf("sigpipe: survived 40 reset clients under a %ld-message stream\n", p.published);
}

/* 2. and 5. Lengths from the caller are checked before anything is allocated or read. */
static void absurd_arguments_are_refused(void) {
    struct wsb_server *server = new_server();
    CHECK(server != NULL, "server created");
    if (!server) return;
    CHECK(wsb_server_start(server) == WSB_OK, "started");
    static const uint8_t body[1] = {0};
    enum wsb_result r =
        wsb_server_publish(server, TOPIC, sizeof TOPIC - 1, NULL, 0, body, SIZE_MAX);
    CHECK(r == WSB_ERR_INVALID_ARGUMENT, "body_len SIZE_MAX is refused (%s)", wsb_result_str(r));
    struct wsb_header header = {"n", 1, "v", 1};
    r = wsb_server_publish(server, TOPIC, sizeof TOPIC - 1, &header, SIZE_MAX, body, 1);
    CHECK(r == WSB_ERR_INVALID_ARGUMENT, "header_count SIZE_MAX is refused (%s)",
          wsb_result_str(r));
    r = wsb_server_publish(server, TOPIC, SIZE_MAX, NULL, 0, body, 1);
    CHECK(r == WSB_ERR_INVALID_ARGUMENT, "destination_len SIZE_MAX is refused (%s)",
          wsb_result_str(r));
    struct wsb_header injected = {"x", 1, "a\0ERROR", 7};
    r = wsb_server_publish(server, TOPIC, sizeof TOPIC - 1, &injected, 1, body, 1);
    CHECK(r == WSB_ERR_INVALID_ARGUMENT, "a NUL in a header value is refused (%s)",
          wsb_result_str(r));
    CHECK(wsb_server_publish(server, "", 0, NULL, 0, body, 1) == WSB_ERR_INVALID_ARGUMENT,
          "an empty destination is refused");
    CHECK(wsb_server_free(server) == WSB_OK, "freed");
}

/* 3. Before start. */
static void publishing_before_start_is_not_running(void) {
    struct wsb_server *server = new_server();
    CHECK(server != NULL, "server created");
    if (!server) return;
    static const uint8_t body[1] = {0};
    enum wsb_result r = wsb_server_publish(server, TOPIC, sizeof TOPIC - 1, NULL, 0, body, 1);
    CHECK(r == WSB_ERR_NOT_RUNNING, "publish before start: %s", wsb_result_str(r));
    CHECK(wsb_server_free(server) == WSB_OK, "freed");
}

/* 4. free while four threads publish. */
static void free_racing_publishers_is_safe(void) {
    for (int round = 0; round < 10; round++) {
        struct wsb_server *server = new_server();
        CHECK(server != NULL, "server created");
        if (!server) return;
        CHECK(wsb_server_start(server) == WSB_OK, "started");
        struct publisher p[4];
        pthread_t threads[4];
        for (int i = 0; i < 4; i++) {
            p[i] = (struct publisher){server, 0, 0, 0, 0};
            pthread_create(&threads[i], NULL, publish_loop, &p[i]);
        }
        struct timespec pause = {0, 2 * 1000 * 1000};
        nanosleep(&pause, NULL);
        CHECK(wsb_server_free(server) == WSB_OK, "freed while publishing");
        for (int i = 0; i < 4; i++) {
            pthread_join(threads[i], NULL);
            CHECK(p[i].not_running == 1, "publisher %d saw WSB_ERR_NOT_RUNNING", i);
            CHECK(p[i].other_errors == 0, "publisher %d: no other errors", i);
        }
        CHECK(wsb_server_free(server) == WSB_ERR_NOT_RUNNING, "a second free is refused");
    }
}

/* A server with a history on /topic/kept, persisted in `dir`. */
static struct wsb_server *durable_server(const char *dir) {
    struct wsb_config *config = NULL;
    struct wsb_server *server = NULL;
    if (wsb_config_new(&config) != WSB_OK) return NULL;
    const char ws[] = "127.0.0.1:0";
    const char pattern[] = "/topic/kept";
    wsb_config_set_listen(config, ws, sizeof ws - 1);
    CHECK(wsb_config_set_fsync_window(config, 5) == WSB_ERR_INVALID_ARGUMENT,
          "an fsync window needs a data dir first");
    CHECK(wsb_config_add_history(config, pattern, sizeof pattern - 1, 100, 0, false) == WSB_OK,
          "history rule");
    CHECK(wsb_config_set_data_dir(config, dir, strlen(dir)) == WSB_OK, "data dir");
    CHECK(wsb_config_set_fsync_window(config, 20000) == WSB_ERR_INVALID_ARGUMENT,
          "an fsync window above 10 s is refused");
    CHECK(wsb_config_set_fsync_window(config, 2) == WSB_OK, "fsync window");
    enum wsb_result r = wsb_server_new(config, &server);
    wsb_config_free(config);
    if (r != WSB_OK || wsb_server_start(server) != WSB_OK) {
        wsb_server_free(server);
        return NULL;
    }
    return server;
}

static void durable_history_outlives_the_server(void) {
    char dir[] = "/tmp/wsb-c-store-XXXXXX";
    if (!mkdtemp(dir)) {
        CHECK(0, "mkdtemp");
        return;
    }
    const char topic[] = "/topic/kept";
    char epoch[64] = {0};
    struct wsb_server *server = durable_server(dir);
    CHECK(server != NULL, "durable server starts");
    if (!server) return;
    for (int i = 1; i <= 3; i++) {
        char body[8];
        int n = snprintf(body, sizeof body, "m%d", i);
        uint64_t offset = 0;
        size_t delivered = 0;
        CHECK(wsb_server_publish_recorded(server, topic, sizeof topic - 1, NULL, 0,
                                          (const uint8_t *)body, (size_t)n, 0, &offset,
                                          &delivered) == WSB_OK && offset == (uint64_t)i,
              "publish %d gets offset %d", i, i);
    }
    CHECK(wsb_server_stop(server, 1000) == WSB_OK, "stop");
    wsb_server_free(server);

    server = durable_server(dir);
    CHECK(server != NULL, "a second server on the same data dir starts");
    if (!server) return;
    struct wsb_history *page = NULL;
    CHECK(wsb_server_history(server, topic, sizeof topic - 1, 0, 100, &page) == WSB_OK,
          "history after the restart");
    if (page) {
        const char *e = NULL;
        size_t e_len = 0;
        uint64_t last = 0;
        bool complete = false;
        CHECK(wsb_history_position(page, &e, &e_len, &last, &complete) == WSB_OK, "position");
        CHECK(last == 3 && complete && e_len > 0 && e_len < sizeof epoch,
              "3 messages kept (last %llu)", (unsigned long long)last);
        if (e_len < sizeof epoch) memcpy(epoch, e, e_len);
        CHECK(wsb_history_len(page) == 3, "3 entries");
        wsb_history_free(page);
    }
    /* The next publish continues the same stream. */
    uint64_t offset = 0;
    CHECK(wsb_server_publish_recorded(server, topic, sizeof topic - 1, NULL, 0,
                                      (const uint8_t *)"m4", 2, 0, &offset, NULL) == WSB_OK &&
              offset == 4,
          "offset 4 after the restart (got %llu)", (unsigned long long)offset);
    wsb_server_free(server);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "remove the data dir");
}

int main(void) {
    durable_history_outlives_the_server();
    sigpipe_is_not_raised();
    absurd_arguments_are_refused();
    publishing_before_start_is_not_running();
    free_racing_publishers_is_safe();
    if (failures) {
        fprintf(stderr, "embedding_safety: %d check(s) failed\n", failures);
        return 1;
    }
    printf("embedding_safety: all checks passed\n");
    return 0;
}
