/*
 * wsbroker.h - C API (ABI version 5) of wsbroker, an embeddable STOMP 1.0-1.2 message broker
 * over WebSocket (and optionally plain TCP), with its own threads.
 *
 * A host program creates a configuration (wsb_config_new, wsb_config_set_*), creates a server
 * from it (wsb_server_new), registers application handlers and host subscriptions, starts it
 * (wsb_server_start), publishes messages to the connected clients (wsb_server_publish, ...)
 * and learns what the clients do through events: polled (WSB_DELIVERY_POLL, the default:
 * wsb_server_poll from a loop of its choosing, with an optional wake callback) or pushed
 * (WSB_DELIVERY_CALLBACK: an event callback on the server's threads). It stops and frees the
 * server with wsb_server_stop / wsb_server_free. Link with -lwsbroker (libwsbroker.so or .a;
 * the static library also needs -lpthread -ldl -lm); installed (scripts/install.sh): with
 * pkg-config wsbroker / wsbroker-static or CMake's wsbroker::wsbroker / wsbroker_static.
 *
 * The same library is a client (wsb_client_*): STOMP over ws://, wss://, TCP or TLS to any
 * broker (wsbroker, RabbitMQ, ActiveMQ...), or raw WebSocket. Create a wsb_client_config for
 * a URL (wsb_client_config_new, wsb_client_config_set_*), a client from it (wsb_client_new),
 * connect (wsb_client_connect waits for CONNECTED; wsb_client_start does not), subscribe,
 * send, ack, and take its events (messages, connection changes, re-subscriptions with their
 * `recovered` flag) with wsb_client_poll once per frame of a game loop, or by callback. A lost
 * connection is re-made with backoff and jitter and every subscription re-made (resuming with
 * x-since/x-epoch when the server keeps history). Requests wait in a bounded outbound queue
 * (block with a timeout, or fail fast), so a producer never blocks the network thread.
 *
 * Conventions
 *   - Every fallible call returns a wsb_result; WSB_OK is 0. Results go out through trailing
 *     out_* pointers, written only on success.
 *   - Strings in are pointer + length (UTF-8, need not be NUL-terminated); NULL with length 0
 *     is the empty string, NULL with a non-zero length is WSB_ERR_NULL_ARGUMENT, invalid
 *     UTF-8 is WSB_ERR_INVALID_UTF8. Bodies are const uint8_t * + length (NULL when 0).
 *   - Strings out (in events) are pointer + length and also NUL-terminated; absent ones are
 *     NULL with length 0.
 *   - Small enumerations (WSB_DELIVERY_*, WSB_OVERFLOW_*, WSB_LOG_*) are passed as integers;
 *     unknown values are WSB_ERR_INVALID_ARGUMENT.
 *   - Connections/sessions and host subscriptions are uint64_t ids, never reused: a stale
 *     id gives WSB_ERR_NOT_FOUND.
 *
 * Result codes (wsb_result; wsb_result_str gives a static description)
 *   0        WSB_OK
 *   100-199  bad arguments: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, INVALID_CONFIG
 *   200-299  state: ALREADY_STARTED, NOT_RUNNING, NOT_FOUND, CALLED_FROM_CALLBACK,
 *            NOT_CONNECTED (client)
 *   300-399  I/O and resources: ADDRESS_IN_USE, IO, BACKPRESSURE, TIMEOUT and REFUSED (client)
 *   900      PANIC: an internal panic was caught at the API boundary (never unwinds into C)
 * Every failing call stores a detail message: wsb_last_error (the calling thread's last
 * failure) and wsb_server_last_error (the server's last failure, any thread).
 *
 * Ownership
 *   - Everything passed in (strings, headers, bodies) is copied; the caller still owns it
 *     and may free or reuse it as soon as the call returns.
 *   - wsb_config and wsb_server are owned by the host: free them with wsb_config_free and
 *     wsb_server_free (which implies wsb_server_stop with a 1 s grace period). A wsb_server
 *     handle is a token, not a pointer: a call that races wsb_server_free (or comes after
 *     it, or frees twice) gets WSB_ERR_NOT_RUNNING, never freed memory; the server goes away
 *     once the calls in progress return.
 *   - A registration that takes (cb, user_data, drop) keeps user_data until the server no
 *     longer needs it, then calls drop(user_data) exactly once: when the registration is
 *     removed or replaced, or on wsb_server_free (wsb_config_free for a config's callbacks;
 *     wsb_server_new moves them from the config into the server). With a NULL cb, or when
 *     the server does not use the callback, drop runs right away. When the registering call
 *     fails, nothing is kept and drop is not called: the caller still owns user_data.
 *
 * Lifetimes of borrowed pointers
 *   - Events filled in by wsb_server_poll / wsb_server_poll_timeout (wsb_client_poll*), and
 *     every pointer inside them, stay valid until the next poll call on the same server
 *     (client) from the same thread, or until wsb_server_free (wsb_client_free).
 *   - The event (and error_buf) passed to a callback are valid only during that call.
 *   - The wsb_upgrade_request and wsb_upgrade_decision passed to the upgrade callback, and
 *     the strings the wsb_upgrade_request_* accessors return, are valid only during that call.
 *   - Strings returned by wsb_version and wsb_result_str are static.
 *
 * Thread safety
 *   - All wsb_server_* functions are thread-safe; publishing (wsb_server_publish,
 *     wsb_server_send_to_*) never blocks and may be called from any thread, including from
 *     inside any wsbroker callback, and so may the decisions (wsb_server_accept / _reject /
 *     _answer_subscribe). Several threads may poll one server; each event is delivered once.
 *   - A wsb_config is not thread-safe: use it from one thread at a time.
 *   - Callbacks run on wsbroker's threads, never the host's. Host code -- the event
 *     callback (callback mode), application handlers, host-subscription callbacks and the
 *     upgrade, connect, subscribe and disconnect callbacks -- runs on the server's callback
 *     threads ("wsbroker-callback", wsb_config_set_callback_threads), not on its IO threads
 *     ("wsbroker-worker"): a callback that blocks delays only the callbacks queued behind it
 *     on its thread, never other clients' traffic. One session's callbacks (and one host
 *     subscription's messages) run on one thread, in order; a host-subscription callback that
 *     publishes to a destination it matches queues another delivery, it never recurses. The
 *     wake callback runs on the thread that queued the event; the log callback on the thread
 *     that logged; drop callbacks on whichever thread releases the registration. user_data
 *     must therefore be usable from any thread. A callback must not wait for another
 *     callback (it may share its thread); it must not unwind (C++ exceptions, longjmp)
 *     through wsbroker.
 *   - Calling wsb_server_stop or wsb_server_free from inside any wsbroker callback returns
 *     WSB_ERR_CALLED_FROM_CALLBACK instead of deadlocking; stop the server from another
 *     thread. Drop and log callbacks must not call wsbroker functions at all.
 *   - All wsb_client_* functions are thread-safe (a wsb_client_config is not). A client has
 *     one network thread ("wsbroker-client"): its event and wake callbacks run there. Calls
 *     that do not wait (send and subscribe without a timeout, ack, begin, unsubscribe) may be
 *     made from any thread and from inside callbacks (there a full outbound queue fails at
 *     once instead of waiting); calls that wait (a timeout > 0, wsb_client_connect,
 *     wsb_client_disconnect, wsb_client_free) return WSB_ERR_CALLED_FROM_CALLBACK there.
 */

#ifndef WSBROKER_H
#define WSBROKER_H

/*
 * Generated by cbindgen from src/ffi (build.rs writes it to $OUT_DIR/wsbroker.h); do not edit.
 * tests/ffi_header.rs fails when this committed copy differs and prints the command to refresh it.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// Version of the C ABI described by this header; `wsb_abi_version()` returns the library's.
// 2: `wsb_event` gained the raw-mode fields (`binary`, `close_code`, `query`, `reason`).
// 3: `wsb_stats` gained the flow-control counters (`publishers_paused`, `publishes_refused`);
// the client API (`wsb_client_*`, `wsb_client_event`) was added.
// 4: `wsb_stats` gained the token-authentication counters (`auth_refused`, `auth_denied`,
// `auth_expired`, `auth_refreshed`); `wsb_config_set_jwt_*` were added.
// 5: cluster mode: `wsb_config_set_cluster_*`, `wsb_server_cluster_stats` (`wsb_cluster_stats`)
// and the `WSB_EVENT_BACKPLANE_*` events were added.
#define WSB_ABI_VERSION 5

// `which` for `wsb_struct_size`: the `wsb_event` struct.
#define WSB_STRUCT_EVENT 1

// `which` for `wsb_struct_size`: the `wsb_header` struct.
#define WSB_STRUCT_HEADER 2

// `which` for `wsb_struct_size`: the `wsb_stats` struct.
#define WSB_STRUCT_STATS 3

// `which` for `wsb_struct_size`: the `wsb_client_event` struct.
#define WSB_STRUCT_CLIENT_EVENT 4

// `which` for `wsb_struct_size`: the `wsb_cluster_stats` struct.
#define WSB_STRUCT_CLUSTER_STATS 5

// Log level: errors.
#define WSB_LOG_ERROR 1

// Log level: warnings.
#define WSB_LOG_WARN 2

// Log level: informational (start, stop, listening addresses).
#define WSB_LOG_INFO 3

// Log level: debugging detail.
#define WSB_LOG_DEBUG 4

// Log level: tracing detail.
#define WSB_LOG_TRACE 5

// No transport (events other than CONNECT and DISCONNECT).
#define WSB_TRANSPORT_NONE 0

// STOMP over WebSocket.
#define WSB_TRANSPORT_WEBSOCKET 1

// STOMP over plain TCP.
#define WSB_TRANSPORT_TCP 2

// A client sent CONNECT. With deferred connects (`wsb_config_set_defer`) it waits for
// `wsb_server_accept` / `wsb_server_reject` (or the decision timeout, which rejects).
#define WSB_EVENT_CONNECT 1

// A session wants to subscribe; with deferred subscribes it waits for
// `wsb_server_answer_subscribe`.
#define WSB_EVENT_SUBSCRIBE 2

// A connected session ended.
#define WSB_EVENT_DISCONNECT 3

// A SEND to an application destination handled with `wsb_server_handle_app` (NULL callback
// in poll or callback mode, or the argument of a `wsb_app_callback`).
#define WSB_EVENT_APP_MESSAGE 4

// A message matching a host subscription (`wsb_server_subscribe`).
#define WSB_EVENT_MESSAGE 5

// Events were lost because the event queue was full; `dropped` counts them.
#define WSB_EVENT_OVERFLOW 6

// Messages for one client subscription were dropped by a limit (a drop-oldest/drop-newest
// slow-consumer policy, a slow consumer disconnected with its queue, an unacknowledged
// limit): `session`, `dropped` (how many since the last such event for this subscription),
// `destination` (of the last one dropped) and one header, `subscription` (the client's
// subscription id). Coalesced: at most one per subscription every 250 ms.
#define WSB_EVENT_MESSAGES_DROPPED 7

// A client connected to a raw endpoint (`wsb_server_add_raw_endpoint`): `session` is the
// raw connection id, `destination` the endpoint path, `query`, `remote_addr`, `headers` and
// `user` (the upgrade hook's principal) describe the request.
#define WSB_EVENT_RAW_OPEN 8

// A message from a client of a host-driven raw endpoint: `session` is the raw connection id,
// `body` the payload, `binary` 1 for a binary message (0: text, valid UTF-8).
#define WSB_EVENT_RAW_MESSAGE 9

// A raw connection ended (its id is stale from now on): `session` is the raw connection id,
// `close_code` and `reason` the close (1006 when it dropped without one).
#define WSB_EVENT_RAW_CLOSE 10

// Relay mode: the system connection to the external message broker is up (again); host
// publishes to relayed destinations flow.
#define WSB_EVENT_BROKER_AVAILABLE 11

// Relay mode: the external message broker cannot be reached (the system connection retries
// with backoff). `body` holds the reason as UTF-8 text.
#define WSB_EVENT_BROKER_UNAVAILABLE 12

// Cluster mode: the engine (Redis or NATS) is reachable (again); publications reach the
// other nodes.
#define WSB_EVENT_BACKPLANE_AVAILABLE 13

// Cluster mode: the engine cannot be reached (the link retries with backoff); local clients
// are still served. `body` holds the reason as UTF-8 text.
#define WSB_EVENT_BACKPLANE_UNAVAILABLE 14

// Events are queued; drain them with `wsb_server_poll` / `wsb_server_poll_timeout` (default).
#define WSB_DELIVERY_POLL 0

// Events are handed to the event callback (`wsb_config_set_event_callback`) on callback threads.
#define WSB_DELIVERY_CALLBACK 1

// A full event queue discards the new event (default).
#define WSB_OVERFLOW_DROP_NEWEST 0

// A full event queue discards its oldest event.
#define WSB_OVERFLOW_DROP_OLDEST 1

// Slow-consumer policy: close the session with an ERROR (default).
#define WSB_SLOW_CONSUMER_DISCONNECT 0

// Slow-consumer policy: drop the subscription's oldest queued message.
#define WSB_SLOW_CONSUMER_DROP_OLDEST 1

// Slow-consumer policy: drop the new message.
#define WSB_SLOW_CONSUMER_DROP_NEWEST 2

// `wsb_config_set_jwt_permissions`: the permissions of sessions without a token.
#define WSB_JWT_ANONYMOUS 0

// `wsb_config_set_jwt_permissions`: the permissions of tokens without `wsb` claims.
#define WSB_JWT_TOKEN_DEFAULTS 1

// Raw endpoint behaviour: client messages become `WSB_EVENT_RAW_MESSAGE` events (needs poll
// or callback delivery).
#define WSB_RAW_HOST 0

// Raw endpoint behaviour: every client message goes to every other client of the endpoint,
// same opcode, inside the server.
#define WSB_RAW_BROADCAST 1

// Raw endpoint behaviour: every client message goes back to its sender, inside the server.
#define WSB_RAW_ECHO 2

// `slow_consumer_policy` of `wsb_server_add_raw_endpoint`: the server's policy
// (`wsb_config_set_slow_consumer_policy`).
#define WSB_RAW_POLICY_SERVER 255

// A client connection is up (STOMP: CONNECTED; raw mode: the WebSocket is open). `text` is
// the STOMP version ("1.2"; raw mode: the subprotocol, may be empty), `server` the server's
// `server` header, `reconnected` 1 after a reconnection (the subscriptions are being re-made:
// a `WSB_CLIENT_EVENT_RESUBSCRIBED` follows for each).
#define WSB_CLIENT_EVENT_CONNECTED 1

// The connection was lost or closed: `text` says why, `reconnecting` is 1 when the client
// will try again.
#define WSB_CLIENT_EVENT_DISCONNECTED 2

// A MESSAGE: `subscription`, `destination`, `headers`, `body`; `ack_id` for client ack
// modes (pass it to `wsb_client_ack` / `wsb_client_nack`).
#define WSB_CLIENT_EVENT_MESSAGE 3

// A subscription was re-made after a reconnection: `subscription`, `destination`, and
// `recovered` 1 when the server confirmed a gap-free resume (`x-recovered:true`, history),
// 0 otherwise.
#define WSB_CLIENT_EVENT_RESUBSCRIBED 4

// The server sent an ERROR frame: `text` is its `message` header, `headers` and `body` the
// rest. The server closes the connection after it (the client reconnects per its policy).
#define WSB_CLIENT_EVENT_ERROR 5

// Raw mode: a message from the server in `body`; `binary` 1 for binary, 0 for text.
#define WSB_CLIENT_EVENT_RAW 6

// Events were lost because the client's event queue was full: `dropped` counts them.
#define WSB_CLIENT_EVENT_OVERFLOW 7

// `wsb_client_subscribe` ack mode: delivered means acknowledged (default).
#define WSB_ACK_AUTO 0

// Ack mode: an ACK acknowledges that message and every earlier one of the subscription.
#define WSB_ACK_CLIENT 1

// Ack mode: an ACK acknowledges exactly one message.
#define WSB_ACK_CLIENT_INDIVIDUAL 2

// Outbound queue policy: a full queue makes the call wait up to the block timeout, then
// fail with `WSB_ERR_BACKPRESSURE` (default, 5 s).
#define WSB_QUEUE_BLOCK 0

// Outbound queue policy: a full queue fails the call at once with `WSB_ERR_BACKPRESSURE`.
#define WSB_QUEUE_FAIL_FAST 1

// The result of every fallible call. Values are grouped and never renumbered:
// 0 success; 1xx bad arguments; 2xx state (wrong time to call, unknown id); 3xx I/O and
// resources; 900 an internal panic (caught; the library stays usable).
typedef enum wsb_result {
    // Success.
    WSB_OK = 0,
    // A required pointer was NULL (or a NULL string/array with a non-zero length).
    WSB_ERR_NULL_ARGUMENT = 100,
    // A string argument was not valid UTF-8.
    WSB_ERR_INVALID_UTF8 = 101,
    // An argument was out of range: an unknown enum value, an unparsable address, a bad
    // destination, a call that does not fit the delivery mode.
    WSB_ERR_INVALID_ARGUMENT = 102,
    // The configuration was rejected by `wsb_server_new`; the last error names the field.
    WSB_ERR_INVALID_CONFIG = 103,
    // `wsb_server_start` on a server that was started before.
    WSB_ERR_ALREADY_STARTED = 200,
    // The server is not running (never started, or stopped).
    WSB_ERR_NOT_RUNNING = 201,
    // Unknown (or no longer existing) session, subscription, handler or listener.
    WSB_ERR_NOT_FOUND = 202,
    // `wsb_server_stop` / `wsb_server_free` (or `wsb_set_log_callback` from the log
    // callback) called from inside a wsbroker callback.
    WSB_ERR_CALLED_FROM_CALLBACK = 203,
    // A client is not connected, or lost its connection before the operation finished.
    WSB_ERR_NOT_CONNECTED = 204,
    // A listen address is taken.
    WSB_ERR_ADDRESS_IN_USE = 300,
    // Any other I/O error.
    WSB_ERR_IO = 301,
    // A bounded queue is full; nothing was queued (the call never blocks).
    WSB_ERR_BACKPRESSURE = 302,
    // A client operation did not finish in time (a receipt, a connection).
    WSB_ERR_TIMEOUT = 303,
    // The server refused (an ERROR frame, an HTTP status, a rejected login).
    WSB_ERR_REFUSED = 304,
    // A panic inside wsbroker was caught; the last error holds its message.
    WSB_ERR_PANIC = 900,
} wsb_result;

// A client. Create with `wsb_client_new`, free with `wsb_client_free`; every `wsb_client_*`
// call is thread-safe.
typedef struct wsb_client wsb_client;

// The settings of a client. Create with `wsb_client_config_new`, free with
// `wsb_client_config_free`. Not thread-safe: use it from one thread at a time.
typedef struct wsb_client_config wsb_client_config;

// The settings of a server. Create with `wsb_config_new`, free with `wsb_config_free`; one
// config may create several servers. Not thread-safe: use it from one thread at a time.
typedef struct wsb_config wsb_config;

// Retained messages of one destination, oldest first, with the stream's position. Made by
// `wsb_server_history`, freed with `wsb_history_free`; read-only, so any thread may read it
// while no thread frees it. Every pointer it hands out stays valid until it is freed.
typedef struct wsb_history wsb_history;

// The presence members of one destination when it was read, in the order they joined. Made
// by `wsb_server_presence`, freed with `wsb_presence_free`; read-only, and every pointer it
// hands out stays valid until it is freed.
typedef struct wsb_presence wsb_presence;

// A server. Create with `wsb_server_new`, free with `wsb_server_free`; every `wsb_server_*`
// call is thread-safe.
typedef struct wsb_server wsb_server;

// The answer to a `wsb_upgrade_callback` (opaque): set it with `wsb_upgrade_accept` or
// `wsb_upgrade_reject`; the last call wins. Left unset, the request is refused with 403.
typedef struct wsb_upgrade_decision wsb_upgrade_decision;

// A WebSocket upgrade request, as a `wsb_upgrade_callback` sees it (opaque). Valid only
// during the callback, and on the callback's thread; so is every string its accessors return.
typedef struct wsb_upgrade_request wsb_upgrade_request;

// Receives a log record: `level` is a `WSB_LOG_*` value, `target` the Rust module path and
// `message` the formatted text (both NUL-terminated, valid during the call). Runs on the
// thread that logged; must not call wsbroker functions.
typedef void (*wsb_log_callback)(void *user_data,
                                 int32_t level,
                                 const char *target,
                                 const char *message);

// Poll mode: the event queue went from empty to non-empty. Runs on the thread that queued
// the event (a "wsbroker-worker" thread, or the publishing thread); must be quick and must not block (signal a condition
// variable, write to an eventfd, post to the host's main loop).
typedef void (*wsb_wake_callback)(void *user_data);

// Releases a `user_data`. Runs exactly once, when the server no longer needs it: when the
// registration is removed or replaced, or on `wsb_server_free` / `wsb_config_free`. It may
// run on any thread; it must not call back into wsbroker.
typedef void (*wsb_drop_callback)(void *user_data);

// A STOMP header. In arguments: pointer + length, UTF-8, not necessarily NUL-terminated.
// In events: also NUL-terminated.
typedef struct wsb_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} wsb_header;

// Something the host is told or asked; `kind` says which fields are set. Strings are
// pointer + length and NUL-terminated; an absent string is NULL with length 0. `body` is
// not NUL-terminated (it is binary-safe); it is non-NULL for APP_MESSAGE, MESSAGE,
// RAW_MESSAGE and BROKER_UNAVAILABLE events, NULL otherwise. `session` is the raw
// connection id in RAW_* events.
//
// Lifetime: an event filled by `wsb_server_poll*` (and all its pointers) stays valid until
// the next poll call on the same server from the same thread, or `wsb_server_free`. An event
// passed to a callback is valid only during that call. Copy what you keep.
typedef struct wsb_event {
    // `WSB_EVENT_*`.
    uint32_t kind;
    // `WSB_TRANSPORT_*` for CONNECT and DISCONNECT, else 0.
    uint32_t transport;
    // CONNECT, SUBSCRIBE, DISCONNECT, APP_MESSAGE, MESSAGES_DROPPED: the session id; RAW_*:
    // the raw connection id; 0 otherwise.
    uint64_t session;
    // MESSAGE: the host subscription id; 0 otherwise.
    uint64_t subscription;
    // OVERFLOW: number of events lost. MESSAGES_DROPPED: number of messages dropped.
    uint64_t dropped;
    // SUBSCRIBE, DISCONNECT, APP_MESSAGE: the session's user; CONNECT: the principal — the
    // upgrade hook's, else the verified token's `sub` (may be absent); RAW_OPEN: the upgrade
    // hook's principal, else the token's `sub` (may be absent).
    const char *user;
    size_t user_len;
    // CONNECT: the `login` header (may be absent).
    const char *login;
    size_t login_len;
    // CONNECT: the `passcode` header (may be absent).
    const char *passcode;
    size_t passcode_len;
    // SUBSCRIBE, APP_MESSAGE, MESSAGE, MESSAGES_DROPPED: the destination; RAW_OPEN: the
    // endpoint path.
    const char *destination;
    size_t destination_len;
    // CONNECT, DISCONNECT, RAW_OPEN: the peer, "ip:port" (may be absent).
    const char *remote_addr;
    size_t remote_addr_len;
    // CONNECT, SUBSCRIBE, APP_MESSAGE, MESSAGE: the frame's headers; RAW_OPEN: the upgrade
    // request's headers, names lowercased (NULL when none). MESSAGES_DROPPED: `subscription`.
    const struct wsb_header *headers;
    size_t header_count;
    // APP_MESSAGE, MESSAGE, RAW_MESSAGE: the body. BROKER_UNAVAILABLE: the reason (UTF-8 text).
    const uint8_t *body;
    size_t body_len;
    // RAW_MESSAGE: 1 for a binary message, 0 for text.
    uint32_t binary;
    // RAW_CLOSE: the WebSocket close code.
    uint32_t close_code;
    // RAW_OPEN: the request's query string without `?` (may be absent).
    const char *query;
    size_t query_len;
    // RAW_CLOSE: the close reason (may be empty).
    const char *reason;
    size_t reason_len;
} wsb_event;

// Receives an event (callback mode, or a host subscription with a callback). `event` and
// every pointer inside it are valid only during the call.
typedef void (*wsb_event_callback)(void *user_data, const struct wsb_event *event);

// Figures for `/metrics` and the host (`wsb_cluster_stats` in C: this struct as it is).
typedef struct wsb_cluster_stats {
    // Whether the engine is reachable.
    bool available;
    // Engine subscriptions held and confirmed by the engine (destinations and patterns with
    // local subscribers, and the history rules' patterns): a publication made anywhere after
    // the count includes a new subscriber's reaches it.
    uint64_t engine_subscriptions;
    // Publications of this node handed to the engine.
    uint64_t published;
    // Publications of other nodes received.
    uint64_t received;
    // Publications of this node the other nodes did not get: made while the engine was
    // unreachable, or lost with the connection.
    uint64_t dropped;
    // Times the engine link was lost and opened again.
    uint64_t reconnects;
} wsb_cluster_stats;

// A point-in-time copy of the server's counters: `Server::stats` in Rust, `wsb_stats` in C
// (`wsb_server_stats`), `Server.stats()` in Python, and `/metrics`. Fields may be added at
// the end in later versions (the C ABI version then changes).
typedef struct wsb_stats {
    // Open connections (WebSocket, SockJS and TCP).
    uint64_t connections;
    // Connections accepted since start.
    uint64_t connections_total;
    // Connections refused because the connection limit (`max_connections`) or the
    // per-address limit (`max_connections_per_ip`) was reached.
    uint64_t connections_refused;
    // STOMP sessions past CONNECT.
    uint64_t sessions;
    // Active client subscriptions.
    uint64_t subscriptions;
    // Messages published (client SENDs and host publishes).
    uint64_t messages_in;
    // MESSAGE frames queued to subscribers.
    uint64_t messages_out;
    // Bytes read from clients.
    uint64_t bytes_in;
    // Bytes written to clients.
    uint64_t bytes_out;
    // Messages accepted for a subscriber but discarded by a limit, so that it never receives
    // them (each subscriber's copy counts once): by the drop-oldest / drop-newest
    // slow-consumer policies, with a slow consumer's outbound queue when it is disconnected,
    // and over a client-ack subscription's unacknowledged limit on a broadcast destination.
    // Queue messages that go back to their queue for another consumer are not counted, nor
    // are frames left unsent when a connection ends for another reason.
    uint64_t dropped;
    // Sessions closed as slow consumers: their outbound queue passed its hard cap, or stayed
    // congested without draining for the slow-consumer timeout.
    uint64_t slow_consumer_disconnects;
    // Times flow control paused a publishing connection (stopped reading it) because its
    // messages left a subscriber's queue congested (or, in relay mode, its broker link full).
    uint64_t publishers_paused;
    // Host publishes refused with `Backpressure` (`WSB_ERR_BACKPRESSURE`) because a subscriber
    // they would reach was congested.
    uint64_t publishes_refused;
    // Tokens refused — invalid, expired, wrong issuer or audience, bad signature, an
    // algorithm not accepted, too large — at the upgrade (HTTP 401), in CONNECT or in a
    // refresh, and clients refused for bringing no token when one is required.
    uint64_t auth_refused;
    // SUBSCRIBE and SEND frames refused because the session's permissions do not allow the
    // destination.
    uint64_t auth_denied;
    // Sessions closed with `token expired` because their token's `exp` passed without a
    // refresh.
    uint64_t auth_expired;
    // Tokens refreshed on a live session (`SEND` to the refresh destination).
    uint64_t auth_refreshed;
} wsb_stats;

// Handles a SEND to an application destination (a `WSB_EVENT_APP_MESSAGE` event). Return 0
// to accept; non-zero refuses it, and the sender gets an ERROR frame whose message is the
// NUL-terminated text written into `error_buf` (capacity `error_cap`; may be left empty),
// then the connection closes with 1008 (policy violation), the code `wsb_server_disconnect`
// gives in poll mode too.
typedef int32_t (*wsb_app_callback)(void *user_data,
                                    const struct wsb_event *event,
                                    char *error_buf,
                                    size_t error_cap);

// Decides on a WebSocket upgrade request (registered with `wsb_server_set_upgrade_callback`):
// inspect `request` with the `wsb_upgrade_request_*` accessors and answer through `decision`.
// Runs on a callback thread ("wsbroker-callback") while that connection's handshake waits (at
// most the decision timeout), possibly on several threads at once for concurrent handshakes;
// blocking there delays only the callbacks queued behind it. It may publish and call other
// `wsb_server_*` functions except `wsb_server_stop` / `wsb_server_free`. Both pointers are valid only during the call.
typedef void (*wsb_upgrade_callback)(void *user_data,
                                     const struct wsb_upgrade_request *request,
                                     struct wsb_upgrade_decision *decision);

// Something a client tells its host; `kind` (`WSB_CLIENT_EVENT_*`) says which fields are
// set. Strings are pointer + length and NUL-terminated (absent: NULL and 0); `body` is
// binary-safe and non-NULL for MESSAGE, ERROR and RAW events.
//
// Lifetime: an event filled by `wsb_client_poll*` (and all its pointers) stays valid until
// the next poll call on the same client from the same thread, or `wsb_client_free`. An event
// passed to a callback is valid only during that call. Copy what you keep.
typedef struct wsb_client_event {
    // `WSB_CLIENT_EVENT_*`.
    uint32_t kind;
    // CONNECTED: 1 after a reconnection.
    uint32_t reconnected;
    // DISCONNECTED: 1 when the client will reconnect.
    uint32_t reconnecting;
    // RESUBSCRIBED: 1 when the server confirmed a gap-free resume.
    uint32_t recovered;
    // RAW: 1 for a binary message, 0 for text.
    uint32_t binary;
    // Reserved, 0.
    uint32_t reserved;
    // MESSAGE, RESUBSCRIBED: the subscription id from `wsb_client_subscribe`.
    uint64_t subscription;
    // OVERFLOW: events lost.
    uint64_t dropped;
    // MESSAGE, RESUBSCRIBED: the destination.
    const char *destination;
    size_t destination_len;
    // MESSAGE: the ack id (client ack modes; absent for auto).
    const char *ack_id;
    size_t ack_id_len;
    // CONNECTED: the version (or subprotocol); DISCONNECTED: the reason; ERROR: the message.
    const char *text;
    size_t text_len;
    // CONNECTED: the server's `server` header (may be absent).
    const char *server;
    size_t server_len;
    // MESSAGE, ERROR: the frame's headers.
    const struct wsb_header *headers;
    size_t header_count;
    // MESSAGE, ERROR, RAW: the body.
    const uint8_t *body;
    size_t body_len;
} wsb_client_event;

// Receives a client event (callback delivery) on the client's network thread
// ("wsbroker-client"). `event` and its pointers are valid only during the call. It may call
// the `wsb_client_*` functions that do not wait (send, subscribe without a timeout, ack...).
typedef void (*wsb_client_event_callback)(void *user_data, const struct wsb_client_event *event);

#ifdef __cplusplus
extern "C" {
#endif // __cplusplus

// The library version, e.g. "0.1.0" (static, NUL-terminated).
const char *wsb_version(void);

// The ABI version of the loaded library: compare with `WSB_ABI_VERSION`.
uint32_t wsb_abi_version(void);

// `sizeof` of a shared struct as this library was built (`WSB_STRUCT_*`), 0 for an unknown
// value: bindings that declare the structs themselves (ctypes, FFI generators) compare their
// layout with it when they load the library.
size_t wsb_struct_size(uint32_t which);

#if defined(WSBROKER_FFI_TEST_PANIC)
// Test-only (cargo feature `ffi-test-panic`): panics inside the guard and returns
// `WSB_ERR_PANIC`, with the panic message in `wsb_last_error`.
enum wsb_result wsb_debug_panic(void);
#endif

// A static description of a result code, e.g. "WSB_ERR_NOT_FOUND: not found";
// "unknown result code" for values this library does not know.
const char *wsb_result_str(int32_t code);

// The detail message of the calling thread's last failed call (not cleared by successful
// calls). Returns its full length in bytes (NUL excluded); when `buf` is not NULL and `cap`
// is not 0, writes a NUL-terminated copy, truncated to `cap - 1` bytes if needed.
//
// # Safety
// `buf` is NULL or valid for `cap` bytes of writing.
size_t wsb_last_error(char *buf, size_t cap);

// Sets the process-wide log callback: records of level `max_level` (`WSB_LOG_*`) and more
// severe are passed to `cb(user_data, level, target, message)` on the thread that logged (see
// `wsb_log_callback`). `cb` NULL turns logging off (`max_level` is then ignored); when this
// returns, no call of the previous callback is in progress. The first call with a callback
// installs wsbroker's `tracing` subscriber as the process's global one; if the program already
// has one, records go there instead and `cb` is not called. From inside the log callback:
// `WSB_ERR_CALLED_FROM_CALLBACK`.
//
// # Safety
// `cb` is NULL or a valid function; `user_data` stays valid until the callback is replaced.
enum wsb_result wsb_set_log_callback(wsb_log_callback cb, void *user_data, int32_t max_level);

// A new config with every default: WebSocket on 127.0.0.1:61614 at path "/ws", poll
// delivery, app prefix "/app", bounded queues, heart-beats 10 s / 10 s. `*out_config` is
// written on success; free it with `wsb_config_free`.
//
// # Safety
// `out_config` is NULL or valid for writing.
enum wsb_result wsb_config_new(struct wsb_config **out_config);

// Frees a config (NULL is fine); callbacks still in it have their drop run. Servers made
// from it are not affected.
//
// # Safety
// `config` is NULL or a pointer from `wsb_config_new` not freed before.
void wsb_config_free(struct wsb_config *config);

// The WebSocket listen address, "ip:port" (e.g. "127.0.0.1:0": port 0 picks a free port;
// read it back with `wsb_server_local_port`). Copied; the caller still owns `addr`.
//
// # Safety
// `config` is NULL or a live config; `addr` is NULL or valid for `addr_len` bytes.
enum wsb_result wsb_config_set_listen(struct wsb_config *config, const char *addr, size_t addr_len);

// The HTTP path of the WebSocket endpoint (default "/ws"). Copied.
//
// # Safety
// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
enum wsb_result wsb_config_set_path(struct wsb_config *config, const char *path, size_t path_len);

// The plain-TCP STOMP listen address ("ip:port"); `addr` NULL turns that listener off
// (the default). Copied.
//
// # Safety
// `config` is NULL or a live config; `addr` is NULL or valid for `addr_len` bytes.
enum wsb_result wsb_config_set_tcp_listen(struct wsb_config *config,
                                          const char *addr,
                                          size_t addr_len);

// Adds an allowed `Origin` ("scheme://host[:port]"); while none is added every origin is
// allowed. Copied.
//
// # Safety
// `config` is NULL or a live config; `origin` is NULL or valid for `origin_len` bytes.
enum wsb_result wsb_config_add_allowed_origin(struct wsb_config *config,
                                              const char *origin,
                                              size_t origin_len);

// Adds an application destination prefix (SENDs there go to `wsb_server_handle_app`
// handlers, not to subscribers). The first call replaces the default "/app". Copied.
//
// # Safety
// `config` is NULL or a live config; `prefix` is NULL or valid for `prefix_len` bytes.
enum wsb_result wsb_config_add_app_prefix(struct wsb_config *config,
                                          const char *prefix,
                                          size_t prefix_len);

// STOMP heart-beats the server offers to send and wants to receive, in ms (0 disables).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_heartbeat(struct wsb_config *config,
                                         uint32_t send_ms,
                                         uint32_t receive_ms);

// Timeouts in ms: the HTTP upgrade, the CONNECT frame after connecting (0 keeps the default
// for these two: 10 s and 30 s), closing a silent WebSocket connection and the WebSocket
// ping interval (0 disables these two).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_timeouts(struct wsb_config *config,
                                        uint32_t handshake_ms,
                                        uint32_t connect_ms,
                                        uint32_t idle_ms,
                                        uint32_t ping_ms);

// Largest STOMP frame accepted, in bytes (default 4 MiB; at most 1 GiB).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_frame_size(struct wsb_config *config, size_t bytes);

// WebSocket compression (permessage-deflate, RFC 7692): `enabled` accepts a client's offer
// (default true; browsers always offer it); with it negotiated, outbound messages of at least
// `threshold` bytes are compressed (default 256; 0 compresses every message) at zlib `level`
// 1 (fastest) ..= 9 (smallest), 0 for the default (6); other levels fail `wsb_server_new`.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_permessage_deflate(struct wsb_config *config,
                                                  bool enabled,
                                                  size_t threshold,
                                                  uint32_t level);

// Most simultaneous connections over all listeners (default 10000).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_connections(struct wsb_config *config, size_t n);

// Most simultaneous connections from one client IP address (default 10000, the global limit:
// clients behind one proxy or NAT share an address); more are refused at accept (WebSocket:
// HTTP 503, TCP: an ERROR frame). Must be greater than 0.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_connections_per_ip(struct wsb_config *config, size_t n);

// Hard caps of one connection's outbound queue (frames, default 16384, and bytes, default
// 8 MiB); past either the client is a slow consumer and is disconnected. A message bigger than
// the byte cap is still delivered to a client that keeps up. Both must be greater than 0.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_outbound_limits(struct wsb_config *config,
                                               size_t max_messages,
                                               size_t max_bytes);

// Flow control (see the README's "Delivery guarantees"): above `high_watermark` queued bytes
// (default 1 MiB) a connection's outbound queue is congested, and the clients publishing into
// it are not read — host publishes get `WSB_ERR_BACKPRESSURE` — until it drains to
// `low_watermark` (default 256 KiB, at most `high_watermark`). A congested queue from which
// nothing is written for `slow_consumer_timeout_ms` (default 10000, > 0) belongs to a stuck
// client, which is then disconnected as a slow consumer.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_flow_control(struct wsb_config *config,
                                            size_t high_watermark,
                                            size_t low_watermark,
                                            uint32_t slow_consumer_timeout_ms);

// Host code — application handlers, host-subscription callbacks, event callbacks and hook
// decisions — runs on `threads` dedicated threads named "wsbroker-callback" (default 4, at
// least 1), never on the IO threads, so a callback that blocks delays only the callbacks queued
// behind it. One session's callbacks, and one host subscription's messages, always run on one
// of them, in order. `queue` (default 65536, at least 1) bounds the callbacks waiting in all: a
// client whose application messages find it full is paused; a host-subscription message that
// finds it full is dropped and counted in `wsb_stats.dropped`, an event is dropped and logged.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_callback_threads(struct wsb_config *config,
                                                size_t threads,
                                                size_t queue);

// Keeps a message history for the destinations matching `pattern` (e.g. "/topic/chat/**";
// rules apply in the order added, the first match wins): the last `size` messages (at least
// 1, at most half of `max_outbound_messages`), each for at most `ttl_ms` (0: until `size`
// pushes it out). Their MESSAGEs carry "x-offset" and "x-epoch"; a SUBSCRIBE may resume with
// "x-since"/"x-epoch" or ask for a backlog with "x-last"; with `last_value` every SUBSCRIBE
// first gets the newest message. Read it with `wsb_server_history`. Copied.
//
// # Safety
// `config` is NULL or a live config; `pattern` is NULL or valid for `pattern_len` bytes.
enum wsb_result wsb_config_add_history(struct wsb_config *config,
                                       const char *pattern,
                                       size_t pattern_len,
                                       size_t size,
                                       uint64_t ttl_ms,
                                       bool last_value);

// Most destinations with a history held at once (default 100000): past it the least
// recently used stream is dropped, and its next message starts a new epoch.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_history_max_destinations(struct wsb_config *config, size_t n);

// Most messages a "/queue/..." destination holds while no consumer takes them; a publish to
// a full queue fails with `WSB_ERR_BACKPRESSURE`.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_queue_depth(struct wsb_config *config, size_t n);

// Largest STOMP frame header section: at most `max_headers` headers (default 64), each
// header line at most `max_header_length` bytes (default 8 KiB).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_header_limits(struct wsb_config *config,
                                             size_t max_headers,
                                             size_t max_header_length);

// Most subscriptions one session may hold (default 1024).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_subscriptions(struct wsb_config *config, size_t n);

// Default limit of unacknowledged messages per client-ack subscription (default 1024; a
// SUBSCRIBE's `prefetch-count` may lower it).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_max_unacked(struct wsb_config *config, size_t n);

// Transaction limits: frames buffered in one transaction (default 10,000) and transactions
// open at once in one session (default 16).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_transaction_limits(struct wsb_config *config,
                                                  size_t max_frames,
                                                  size_t max_open);

// Queue and user destination prefixes (defaults "/queue/" and "/user/"); either may be NULL to
// keep its current value.
//
// # Safety
// `config` is NULL or a live config; each string is NULL or `len` readable bytes.
enum wsb_result wsb_config_set_prefixes(struct wsb_config *config,
                                        const char *queue_prefix,
                                        size_t queue_prefix_len,
                                        const char *user_prefix,
                                        size_t user_prefix_len);

// Worker threads of the server's runtime; 0 (default) means one per CPU.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_worker_threads(struct wsb_config *config, uint32_t n);

// `WSB_DELIVERY_POLL` (default) or `WSB_DELIVERY_CALLBACK` (needs an event callback);
// anything else is `WSB_ERR_INVALID_ARGUMENT`.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_delivery_mode(struct wsb_config *config, uint32_t mode);

// Poll mode: the event queue's capacity (default 65536; 0 counts as 1) and what a full
// queue does (`WSB_OVERFLOW_*`; lost events are reported by a `WSB_EVENT_OVERFLOW` event).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_event_queue(struct wsb_config *config,
                                           size_t capacity,
                                           uint32_t overflow_policy);

// What a broadcast subscription in auto ack mode does when its connection's outbound queue
// is full (`WSB_SLOW_CONSUMER_*`; a SUBSCRIBE may choose with an `overflow-policy` header).
// Drops are counted in `wsb_stats.dropped`; queue and client-ack subscriptions always
// disconnect (they are flow controlled instead).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_slow_consumer_policy(struct wsb_config *config, uint32_t policy);

// Which decisions the host makes through events (both modes): with `connect`, every CONNECT
// becomes a `WSB_EVENT_CONNECT` and waits for `wsb_server_accept` / `wsb_server_reject`;
// with `subscribe`, every SUBSCRIBE a `WSB_EVENT_SUBSCRIBE` waiting for
// `wsb_server_answer_subscribe`. Default: neither (every client is accepted as its `login`,
// every subscription allowed).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_defer(struct wsb_config *config, bool connect, bool subscribe);

// How long a deferred decision may take before the client is refused (default 10 s; must
// be > 0).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_decision_timeout(struct wsb_config *config, uint32_t ms);

// Poll mode: `cb(user_data)` runs when the event queue goes from empty to non-empty (see
// `wsb_wake_callback`). Replaces (and drops) an earlier one; `cb` NULL clears it (and a
// given `drop(user_data)` runs at once). Every server the config creates shares it; its
// `drop(user_data)` runs once, when it is replaced or the config and all those servers are
// freed. In callback mode it is never called.
//
// # Safety
// `config` is NULL or a live config; `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_config_set_wake_callback(struct wsb_config *config,
                                             wsb_wake_callback cb,
                                             void *user_data,
                                             wsb_drop_callback drop);

// Callback mode: `cb(user_data, event)` receives every event on a "wsbroker-worker" thread
// (see `wsb_event_callback`). Replaces (and drops) an earlier one; `cb` NULL clears it (and a
// given `drop(user_data)` runs at once). Every server the config creates shares it; its
// `drop(user_data)` runs once, when it is replaced or the config and all those servers are
// freed. In poll mode it is never called.
//
// # Safety
// `config` is NULL or a live config; `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_config_set_event_callback(struct wsb_config *config,
                                              wsb_event_callback cb,
                                              void *user_data,
                                              wsb_drop_callback drop);

// URL prefix of the SockJS endpoint on the WebSocket listener (default "/sockjs"; no
// trailing slash). `path` NULL or empty turns SockJS off. Copied.
//
// # Safety
// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
enum wsb_result wsb_config_set_sockjs_path(struct wsb_config *config,
                                           const char *path,
                                           size_t path_len);

// SockJS timing and sizes: the `h` heart-beat interval and the disconnect delay in ms, and
// the bytes after which a streaming response is ended. 0 keeps a value's default (25 s, 5 s,
// 128 KiB).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_sockjs_limits(struct wsb_config *config,
                                             uint32_t heartbeat_ms,
                                             uint32_t disconnect_delay_ms,
                                             size_t response_limit);

// SockJS options: whether the `websocket` transport is offered (default true) and whether
// session responses set a `JSESSIONID` cookie for sticky load balancers (default false).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_sockjs_options(struct wsb_config *config,
                                              bool websocket,
                                              bool cookie_needed);

// Directory whose files are served over HTTP on the WebSocket listener (paths other than
// the WebSocket endpoint, the SockJS prefix and "/metrics"); `dir` NULL turns it off (the
// default). Copied.
//
// # Safety
// `config` is NULL or a live config; `dir` is NULL or valid for `dir_len` bytes.
enum wsb_result wsb_config_set_static_dir(struct wsb_config *config,
                                          const char *dir,
                                          size_t dir_len);

// A durable store in directory `dir` (created if missing): queues and histories persist
// and survive a restart, even a crash; a RECEIPT for a SEND to a queue or history
// destination comes once the message is on disk. `dir` NULL turns it off (the default: in
// memory). Keeps the fsync policy set before. Copied. The directory is opened (and locked:
// one server per directory) by `wsb_server_start`.
//
// # Safety
// `config` is NULL or a live config; `dir` is NULL or valid for `dir_len` bytes.
enum wsb_result wsb_config_set_data_dir(struct wsb_config *config, const char *dir, size_t dir_len);

// When the durable store syncs: `window_ms` 0 syncs every commit at once (messages that
// arrive meanwhile share the next one: the default); 1..=10000 collects messages for up to
// that many milliseconds and syncs them together (receipts later by up to the window).
// `WSB_ERR_INVALID_ARGUMENT` without a data dir set first, or above 10000.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_fsync_window(struct wsb_config *config, uint32_t window_ms);

// TLS on every listener with the certificate chain (server certificate first) and its
// private key read from these PEM files when the server starts (`wss://`, STOMP over TLS).
// Keeps a client CA set before. `cert_path` NULL turns TLS off (the default). Copied.
//
// # Safety
// `config` is NULL or a live config; `cert_path` and `key_path` are NULL or valid for their
// lengths.
enum wsb_result wsb_config_set_tls_files(struct wsb_config *config,
                                         const char *cert_path,
                                         size_t cert_path_len,
                                         const char *key_path,
                                         size_t key_path_len);

// Like `wsb_config_set_tls_files`, with the certificate chain and private key given as PEM
// text in memory. Copied; the caller may wipe its buffers afterwards.
//
// # Safety
// `config` is NULL or a live config; `cert_pem` and `key_pem` are NULL or valid for their
// lengths.
enum wsb_result wsb_config_set_tls_pem(struct wsb_config *config,
                                       const uint8_t *cert_pem,
                                       size_t cert_pem_len,
                                       const uint8_t *key_pem,
                                       size_t key_pem_len);

// Requires a client certificate signed by one of these CAs (mutual TLS). `ca` is a PEM
// file path when `is_file` is non-zero, else PEM text; `ca` NULL removes the requirement
// (the default). Needs `wsb_config_set_tls_files` or `wsb_config_set_tls_pem` first
// (else `WSB_ERR_INVALID_ARGUMENT`). Copied.
//
// # Safety
// `config` is NULL or a live config; `ca` is NULL or valid for `ca_len` bytes.
enum wsb_result wsb_config_set_tls_client_ca(struct wsb_config *config,
                                             const uint8_t *ca,
                                             size_t ca_len,
                                             bool is_file);

// Token (JWT) authentication with this HMAC secret (the raw bytes); see
// docs/authentication.md. Every other token setting keeps its value (defaults: algorithm
// HS256, leeway 30 s, tokens optional, query parameter "access_token", refresh destination
// "/wsb/refresh"). `secret` NULL turns token authentication off. Copied. An empty secret is
// refused by `wsb_server_new`.
//
// # Safety
// `config` is NULL or a live config; `secret` is NULL or valid for `secret_len` bytes.
enum wsb_result wsb_config_set_jwt_hmac_secret(struct wsb_config *config,
                                               const uint8_t *secret,
                                               size_t secret_len);

// Token authentication with this public key in PEM: RSA, EC P-256/P-384 or Ed25519 (the
// algorithm defaults to RS256, ES256/ES384 or EdDSA by its type). `pem` NULL turns token
// authentication off. Copied; a key that does not parse is refused by `wsb_server_new`.
//
// # Safety
// `config` is NULL or a live config; `pem` is NULL or valid for `pem_len` bytes.
enum wsb_result wsb_config_set_jwt_public_key_pem(struct wsb_config *config,
                                                  const char *pem,
                                                  size_t pem_len);

// Token authentication with the keys of a JWKS file, read by `wsb_server_start` (which fails
// when it cannot be read or parsed) and reloaded whenever it changes (checked every second).
// `path` NULL turns token authentication off. Copied.
//
// # Safety
// `config` is NULL or a live config; `path` is NULL or valid for `path_len` bytes.
enum wsb_result wsb_config_set_jwt_jwks_file(struct wsb_config *config,
                                             const char *path,
                                             size_t path_len);

// The algorithms tokens may be signed with, comma-separated ("RS256,PS256"); NULL or empty
// infers one from the key (the default). `none` does not exist. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `names` is NULL or valid for `names_len` bytes.
enum wsb_result wsb_config_set_jwt_algorithms(struct wsb_config *config,
                                              const char *names,
                                              size_t names_len);

// The claim checks: required issuer (`iss`) and audience (`aud`), NULL for none (the
// default; without an audience, tokens that carry `aud` are refused), and the clock skew
// allowed on `exp` and `nbf` in seconds (default 30). Copied. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `issuer` and `audience` are NULL or valid for their
// lengths.
enum wsb_result wsb_config_set_jwt_claims(struct wsb_config *config,
                                          const char *issuer,
                                          size_t issuer_len,
                                          const char *audience,
                                          size_t audience_len,
                                          uint32_t leeway_s);

// Where upgrade (and SockJS) requests carry a token besides `Authorization: Bearer`: a
// cookie name (NULL: none, the default) and a query parameter (NULL or empty: none; default
// "access_token"). Copied. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `cookie` and `query_param` are NULL or valid for their
// lengths.
enum wsb_result wsb_config_set_jwt_sources(struct wsb_config *config,
                                           const char *cookie,
                                           size_t cookie_len,
                                           const char *query_param,
                                           size_t query_param_len);

// Whether clients without a token are refused (true) or connect anonymously with the
// anonymous permissions (false, the default). Needs a key set first.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_jwt_required(struct wsb_config *config, bool required);

// Destination patterns (comma-separated; NULL or empty: none) that `who` may subscribe and
// publish to: `WSB_JWT_ANONYMOUS` (sessions without a token; default none) or
// `WSB_JWT_TOKEN_DEFAULTS` (tokens without `wsb.sub`/`wsb.pub` claims; default "**", all).
// Copied. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `subscribe` and `publish` are NULL or valid for their
// lengths.
enum wsb_result wsb_config_set_jwt_permissions(struct wsb_config *config,
                                               uint32_t who,
                                               const char *subscribe,
                                               size_t subscribe_len,
                                               const char *publish,
                                               size_t publish_len);

// Private destinations (comma-separated patterns; NULL or empty: none): a SUBSCRIBE to one
// needs a subscription token in an `x-sub-token` header (a JWT whose `sub` is the session's
// user and whose `wsb.dest` claim is the destination), whatever the session's permissions;
// when that token expires the subscription ends (a last MESSAGE on it carries
// `x-unsubscribed:token expired`). Copied. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `patterns` is NULL or valid for `patterns_len` bytes.
enum wsb_result wsb_config_set_jwt_private(struct wsb_config *config,
                                           const char *patterns,
                                           size_t patterns_len);

// The destination a client SENDs a new token to (default "/wsb/refresh") and the largest
// token accepted in bytes (0 keeps the default, 8192). Copied. Needs a key set first.
//
// # Safety
// `config` is NULL or a live config; `destination` is NULL or valid for `destination_len`
// bytes.
enum wsb_result wsb_config_set_jwt_refresh(struct wsb_config *config,
                                           const char *destination,
                                           size_t destination_len,
                                           size_t max_token_size);

// Relay mode: destinations under the relayed prefixes (default /topic, /queue, /exchange,
// /amq/queue, /temp-queue, /reply-queue) live on the external STOMP broker at `broker`
// ("host:port", e.g. RabbitMQ's "127.0.0.1:61613"); every client session gets its own
// broker connection, host publishes and subscriptions share one. Resets the other relay
// settings to their defaults (login "guest"). `broker` NULL turns relay mode off. Copied.
//
// # Safety
// `config` is NULL or a live config; `broker` is NULL or valid for `broker_len` bytes.
enum wsb_result wsb_config_set_relay(struct wsb_config *config,
                                     const char *broker,
                                     size_t broker_len);

// Relay mode: login and passcode of the client sessions' broker connections (default
// "guest"/"guest"). Copied.
//
// # Safety
// `config` is NULL or a live config; `login` and `passcode` are NULL or valid for their lengths.
enum wsb_result wsb_config_set_relay_credentials(struct wsb_config *config,
                                                 const char *login,
                                                 size_t login_len,
                                                 const char *passcode,
                                                 size_t passcode_len);

// Relay mode: login and passcode of the shared system connection (default "guest"/"guest").
// Copied.
//
// # Safety
// `config` is NULL or a live config; `login` and `passcode` are NULL or valid for their lengths.
enum wsb_result wsb_config_set_relay_system_credentials(struct wsb_config *config,
                                                        const char *login,
                                                        size_t login_len,
                                                        const char *passcode,
                                                        size_t passcode_len);

// Relay mode: the `host` header of broker CONNECTs (RabbitMQ: the virtual host). NULL (the
// default) sends none: the broker's default virtual host. Copied.
//
// # Safety
// `config` is NULL or a live config; `vhost` is NULL or valid for `vhost_len` bytes.
enum wsb_result wsb_config_set_relay_virtual_host(struct wsb_config *config,
                                                  const char *vhost,
                                                  size_t vhost_len);

// Relay mode: heart-beats on broker connections, in ms, that wsbroker sends and wants to
// receive (default 10000 each; 0 disables).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_relay_heartbeat(struct wsb_config *config,
                                               uint32_t send_ms,
                                               uint32_t receive_ms);

// Relay mode: removes every relayed prefix (add the wanted ones with
// `wsb_config_add_relay_prefix`; starting a server with none is an invalid configuration).
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_clear_relay_prefixes(struct wsb_config *config);

// Relay mode: adds a relayed destination prefix (e.g. "/topic"). Copied.
//
// # Safety
// `config` is NULL or a live config; `prefix` is NULL or valid for `prefix_len` bytes.
enum wsb_result wsb_config_add_relay_prefix(struct wsb_config *config,
                                            const char *prefix,
                                            size_t prefix_len);

// Relay mode: session restore (default off). When on, a client session whose broker
// connection drops gets a new one with its subscriptions re-made instead of being closed;
// topic messages published in the gap are lost, queue messages wait in the broker.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_relay_session_restore(struct wsb_config *config, bool enabled);

// Cluster mode on Redis: this node shares its broadcast destinations, `/user` destinations and
// host publishes with every node on the same Redis (`redis://[user:password@]host[:port][/db]`,
// `rediss://` for TLS; several servers comma-separated, e.g. a Redis Cluster's nodes; or
// `redis+sentinel://host:port[,host:port...]/SERVICE[/db]`, the master Redis Sentinel names)
// through one pub/sub and one command connection, and fans out locally.
// Resets the other cluster settings to their defaults. `url` NULL turns cluster mode off.
// Copied. See docs/cluster.md.
//
// # Safety
// `config` is NULL or a live config; `url` is NULL or valid for `url_len` bytes.
enum wsb_result wsb_config_set_cluster_redis(struct wsb_config *config,
                                             const char *url,
                                             size_t url_len);

// Cluster mode on NATS core subjects (`nats://host[:port]`, several servers comma-separated),
// through one connection; otherwise as `wsb_config_set_cluster_redis`.
//
// # Safety
// `config` is NULL or a live config; `url` is NULL or valid for `url_len` bytes.
enum wsb_result wsb_config_set_cluster_nats(struct wsb_config *config,
                                            const char *url,
                                            size_t url_len);

// Cluster mode: this node's name in logs and metrics (default: host name and process id).
// Copied.
//
// # Safety
// `config` is NULL or a live config; `node_id` is valid for `node_id_len` bytes.
enum wsb_result wsb_config_set_cluster_node_id(struct wsb_config *config,
                                               const char *node_id,
                                               size_t node_id_len);

// Cluster mode: the prefix of every engine channel or subject (default "wsbroker"; letters,
// digits, '-' and '_'). Clusters sharing one engine keep apart with different prefixes.
// Copied.
//
// # Safety
// `config` is NULL or a live config; `prefix` is valid for `prefix_len` bytes.
enum wsb_result wsb_config_set_cluster_prefix(struct wsb_config *config,
                                              const char *prefix,
                                              size_t prefix_len);

// A snapshot of the cluster figures: whether the engine is reachable, the engine
// subscriptions it confirmed, publications handed on, received and dropped, reconnections.
// `WSB_ERR_NOT_FOUND` when the server is not a cluster node.
//
// # Safety
// `server` is NULL or a live server; `out_stats` is NULL or valid for writing.
enum wsb_result wsb_server_cluster_stats(const struct wsb_server *server,
                                         struct wsb_cluster_stats *out_stats);

// Creates a server from `config` (validated now: `WSB_ERR_INVALID_CONFIG` names the bad
// field). Copies the settings and moves the callbacks out of the config (so each drop runs
// once); on failure the config is left as it was. Write `*out_server` on success; the server
// does not listen until `wsb_server_start`.
//
// # Safety
// `config` is NULL or a live config; `out_server` is NULL or valid for writing.
enum wsb_result wsb_server_new(struct wsb_config *config, struct wsb_server **out_server);

// Stops the server if it runs (1 s grace), runs every remaining drop callback and frees it.
// NULL is fine. From inside a wsbroker callback: `WSB_ERR_CALLED_FROM_CALLBACK`, and nothing
// is freed. Calls on this server from other threads that race the free, or come after it,
// are safe: they get `WSB_ERR_NOT_RUNNING` (a call already in progress finishes first, and
// the server is released after it). Freeing it twice is `WSB_ERR_NOT_RUNNING` too.
//
// # Safety
// `server` is NULL or a handle from `wsb_server_new`.
enum wsb_result wsb_server_free(struct wsb_server *server);

// Binds the listeners (synchronously: a taken address is `WSB_ERR_ADDRESS_IN_USE` here) and
// starts the server's threads. A server starts once (`WSB_ERR_ALREADY_STARTED`).
//
// # Safety
// `server` is NULL or a live server.
enum wsb_result wsb_server_start(struct wsb_server *server);

// Stops accepting, closes every connection (ERROR "server shutting down", WebSocket close
// 1001), waits up to `grace_ms` for them and stops the server's threads. Twice, or before
// start: `WSB_ERR_NOT_RUNNING`. From inside a wsbroker callback:
// `WSB_ERR_CALLED_FROM_CALLBACK`.
//
// # Safety
// `server` is NULL or a live server.
enum wsb_result wsb_server_stop(struct wsb_server *server, uint32_t grace_ms);

// The bound WebSocket port (`WSB_ERR_NOT_RUNNING` when not running).
//
// # Safety
// `server` is NULL or a live server; `out_port` is NULL or valid for writing.
enum wsb_result wsb_server_local_port(const struct wsb_server *server, uint16_t *out_port);

// The bound plain-TCP STOMP port (`WSB_ERR_NOT_FOUND` when that listener is off,
// `WSB_ERR_NOT_RUNNING` when the server is not running).
//
// # Safety
// `server` is NULL or a live server; `out_port` is NULL or valid for writing.
enum wsb_result wsb_server_tcp_port(const struct wsb_server *server, uint16_t *out_port);

// The detail message of the last failed call on this server (from any thread). Writes the
// full length (NUL excluded) to `*out_len` and, when `buf` is not NULL and `cap` is not 0, a
// NUL-terminated copy truncated to `cap - 1` bytes. `buf` may be NULL only with `cap` 0.
//
// # Safety
// `server` is NULL or a live server; `buf` is NULL or valid for `cap` bytes of writing;
// `out_len` is NULL or valid for writing.
enum wsb_result wsb_server_last_error(const struct wsb_server *server,
                                      char *buf,
                                      size_t cap,
                                      size_t *out_len);

// A snapshot of the server's counters.
//
// # Safety
// `server` is NULL or a live server; `out_stats` is NULL or valid for writing.
enum wsb_result wsb_server_stats(const struct wsb_server *server, struct wsb_stats *out_stats);

// Publishes a message to a destination ("/topic/x" broadcast, "/queue/x" one consumer,
// "/user/{name}/..."). Headers and body are copied; the caller still owns them. Never
// blocks; from any thread, also inside callbacks. While a subscriber it would reach is
// congested (flow control), or a queue destination is full, it is `WSB_ERR_BACKPRESSURE` and
// nothing is delivered: retry later, or use `wsb_server_publish_wait`. A header with a NUL
// (or a name with CR/LF), or an empty destination or one with NUL/CR/LF, is
// `WSB_ERR_INVALID_ARGUMENT`, and so are a body above the frame size limit and more headers
// than `max_headers`; before start and after stop it is `WSB_ERR_NOT_RUNNING`.
//
// # Safety
// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
enum wsb_result wsb_server_publish(struct wsb_server *server,
                                   const char *destination,
                                   size_t destination_len,
                                   const struct wsb_header *headers,
                                   size_t header_count,
                                   const uint8_t *body,
                                   size_t body_len);

// As `wsb_server_publish`, but while flow control refuses the message it waits up to
// `timeout_ms` for room (then `WSB_ERR_BACKPRESSURE`). Blocks the calling thread, so not
// from inside a wsbroker callback (`WSB_ERR_CALLED_FROM_CALLBACK`). A stuck subscriber is
// disconnected once the slow-consumer timeout passed, so a longer wait only waits for busy
// ones.
//
// # Safety
// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
enum wsb_result wsb_server_publish_wait(struct wsb_server *server,
                                        const char *destination,
                                        size_t destination_len,
                                        const struct wsb_header *headers,
                                        size_t header_count,
                                        const uint8_t *body,
                                        size_t body_len,
                                        uint32_t timeout_ms);

// Sends to every session of `user` subscribed to "/user" + `destination` (e.g. destination
// "/queue/reply" reaches subscriptions to "/user/queue/reply"). Copied; never blocks.
//
// # Safety
// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
enum wsb_result wsb_server_send_to_user(struct wsb_server *server,
                                        const char *user,
                                        size_t user_len,
                                        const char *destination,
                                        size_t destination_len,
                                        const struct wsb_header *headers,
                                        size_t header_count,
                                        const uint8_t *body,
                                        size_t body_len);

// Sends only to the subscriptions of one session that match `destination` (written as the
// session subscribed it). Unknown session: `WSB_ERR_NOT_FOUND`. Copied; never blocks.
//
// # Safety
// `server` is NULL or a live server; every pointer is NULL or valid for its length/count.
enum wsb_result wsb_server_send_to_session(struct wsb_server *server,
                                           uint64_t session,
                                           const char *destination,
                                           size_t destination_len,
                                           const struct wsb_header *headers,
                                           size_t header_count,
                                           const uint8_t *body,
                                           size_t body_len);

// Closes a session with an ERROR frame carrying `reason` (copied).
//
// # Safety
// `server` is NULL or a live server; `reason` is NULL or valid for `reason_len` bytes.
enum wsb_result wsb_server_disconnect(struct wsb_server *server,
                                      uint64_t session,
                                      const char *reason,
                                      size_t reason_len);

// Subscribes the host to a destination pattern ("/topic/a", "/topic/*", "/topic/**"); the host
// sees every matching message (broadcast or queue) without consuming it. With `cb`, it is
// called with a `WSB_EVENT_MESSAGE` event on a callback thread ("wsbroker-callback"), one
// message at a time in publish order, never on the publisher's thread; with `cb` NULL the messages arrive as
// `WSB_EVENT_MESSAGE` events through the delivery mode (and a given `drop(user_data)` runs at
// once). Writes the subscription id (never reused) to `*out_id`. On failure nothing is
// registered and `drop` is not called.
//
// # Safety
// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes;
// `cb` and `drop` are NULL or valid functions; `out_id` is NULL or valid for writing.
enum wsb_result wsb_server_subscribe(struct wsb_server *server,
                                     const char *pattern,
                                     size_t pattern_len,
                                     wsb_event_callback cb,
                                     void *user_data,
                                     wsb_drop_callback drop,
                                     uint64_t *out_id);

// Ends a host subscription (its drop runs once no call of its callback is in progress).
// Unknown id: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// `server` is NULL or a live server.
enum wsb_result wsb_server_unsubscribe(struct wsb_server *server, uint64_t id);

// Handles SENDs to application destinations matching `pattern` (e.g. "/app/chat",
// "/app/**"); a later registration of the same pattern replaces the earlier one (whose drop
// runs). With `cb`, it is called on a callback thread for each such SEND, one SEND of a session
// at a time and in order (see
// `wsb_app_callback`); with `cb` NULL they arrive as `WSB_EVENT_APP_MESSAGE` events through
// the delivery mode (and a given `drop(user_data)` runs at once). On failure nothing is
// registered and `drop` is not called.
//
// # Safety
// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes;
// `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_server_handle_app(struct wsb_server *server,
                                      const char *pattern,
                                      size_t pattern_len,
                                      wsb_app_callback cb,
                                      void *user_data,
                                      wsb_drop_callback drop);

// Removes the application handler of `pattern` (its drop runs). Unknown: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// `server` is NULL or a live server; `pattern` is NULL or valid for `pattern_len` bytes.
enum wsb_result wsb_server_remove_app(struct wsb_server *server,
                                      const char *pattern,
                                      size_t pattern_len);

// Accepts a deferred CONNECT (`WSB_EVENT_CONNECT`), as user `user` (NULL: no user; the user
// enables "/user/..." destinations). A session not waiting (answered, timed out, gone):
// `WSB_ERR_NOT_FOUND`. From any thread, also inside callbacks.
//
// # Safety
// `server` is NULL or a live server; `user` is NULL or valid for `user_len` bytes.
enum wsb_result wsb_server_accept(struct wsb_server *server,
                                  uint64_t session,
                                  const char *user,
                                  size_t user_len);

// Rejects a deferred CONNECT; the client gets an ERROR frame with `message` (copied).
//
// # Safety
// `server` is NULL or a live server; `message` is NULL or valid for `message_len` bytes.
enum wsb_result wsb_server_reject(struct wsb_server *server,
                                  uint64_t session,
                                  const char *message,
                                  size_t message_len);

// Answers a deferred SUBSCRIBE (`WSB_EVENT_SUBSCRIBE`): `allow`, or refuse with an ERROR
// frame carrying `message` (copied; ignored when allowing).
//
// # Safety
// `server` is NULL or a live server; `message` is NULL or valid for `message_len` bytes.
enum wsb_result wsb_server_answer_subscribe(struct wsb_server *server,
                                            uint64_t session,
                                            bool allow,
                                            const char *message,
                                            size_t message_len);

// Poll mode: moves up to `max_events` queued events into `events[0..*out_count]` without
// blocking (`*out_count` may be 0). A `WSB_EVENT_OVERFLOW` comes first when events were lost.
// Each event goes to exactly one poller. The events' pointers stay valid until this thread's
// next poll on this server (or `wsb_server_free`). In callback mode:
// `WSB_ERR_INVALID_ARGUMENT`.
//
// # Safety
// `server` is NULL or a live server; `events` is NULL or valid for `max_events` writes;
// `out_count` is NULL or valid for writing.
enum wsb_result wsb_server_poll(struct wsb_server *server,
                                struct wsb_event *events,
                                size_t max_events,
                                size_t *out_count);

// Like `wsb_server_poll`, but waits up to `timeout_ms` for the first event.
//
// # Safety
// As `wsb_server_poll`.
enum wsb_result wsb_server_poll_timeout(struct wsb_server *server,
                                        struct wsb_event *events,
                                        size_t max_events,
                                        uint32_t timeout_ms,
                                        size_t *out_count);

// Reads the retained history of `destination`: up to `limit` messages after offset `since`
// (0: from the oldest retained), oldest first. `*out_history` is written on success; free it
// with `wsb_history_free`. `WSB_ERR_NOT_FOUND` when no history rule covers `destination`
// (`wsb_config_add_history`), `WSB_ERR_INVALID_ARGUMENT` for a pattern.
//
// # Safety
// `server` is NULL or a live server; `destination` is NULL or valid for `destination_len`
// bytes; `out_history` is NULL or valid for writing.
enum wsb_result wsb_server_history(struct wsb_server *server,
                                   const char *destination,
                                   size_t destination_len,
                                   uint64_t since,
                                   size_t limit,
                                   struct wsb_history **out_history);

// Frees a history page (NULL is ignored). Every pointer read from it becomes invalid.
//
// # Safety
// `history` is NULL or a page from `wsb_server_history` not freed before.
void wsb_history_free(struct wsb_history *history);

// The stream's position when the page was read: its epoch (NUL-terminated, valid until the
// page is freed), the last offset it assigned (0 before the first message), and whether the
// page holds every message after the asked offset (`*out_complete` false when some fell out
// of retention or the epoch is not the one the offset came from). Any out-pointer may be NULL.
//
// # Safety
// `history` is NULL or a live page; each out-pointer is NULL or valid for writing.
enum wsb_result wsb_history_position(const struct wsb_history *history,
                                     const char **out_epoch,
                                     size_t *out_epoch_len,
                                     uint64_t *out_last_offset,
                                     bool *out_complete);

// How many messages the page holds (0 for NULL).
//
// # Safety
// `history` is NULL or a live page.
size_t wsb_history_len(const struct wsb_history *history);

// Message `index` (0 = oldest) of the page: its offset and a `WSB_EVENT_MESSAGE` event
// (`destination`, `headers` including "x-offset" and "x-epoch", `body`; `subscription` 0),
// valid until the page is freed. `WSB_ERR_INVALID_ARGUMENT` past the end.
//
// # Safety
// `history` is NULL or a live page; the out-pointers are NULL or valid for writing.
enum wsb_result wsb_history_message(const struct wsb_history *history,
                                    size_t index,
                                    uint64_t *out_offset,
                                    const struct wsb_event **out_message);

// Publishes like `wsb_server_publish` (`timeout_ms` 0: never blocks) or
// `wsb_server_publish_wait` (`timeout_ms` above 0), and writes where the message went in
// its destination's history to `*out_offset` (0 when no history rule covers the destination
// or it is a queue) and how many client subscriptions it was queued to to `*out_delivered`.
// Either out-pointer may be NULL.
//
// # Safety
// As `wsb_server_publish`; each out-pointer is NULL or valid for writing.
enum wsb_result wsb_server_publish_recorded(struct wsb_server *server,
                                            const char *destination,
                                            size_t destination_len,
                                            const struct wsb_header *headers,
                                            size_t header_count,
                                            const uint8_t *body,
                                            size_t body_len,
                                            uint32_t timeout_ms,
                                            uint64_t *out_offset,
                                            size_t *out_delivered);

// Makes every subscriber of the destinations matching `pattern` (e.g. "/topic/room/*") a
// presence member (listed by `wsb_server_presence`, announced to the subscribers that
// listen). A SUBSCRIBE with "x-presence:true" is a member of any topic destination and also
// gets a snapshot MESSAGE ("x-presence:snapshot", a JSON array of members) and a MESSAGE for
// every later join and leave ("x-presence:join" / "leave", "x-presence-session",
// "x-presence-user", "x-presence-count"; a join's body is the member's "x-presence-info").
// Copied.
//
// # Safety
// `config` is NULL or a live config; `pattern` is NULL or valid for `pattern_len` bytes.
enum wsb_result wsb_config_add_presence(struct wsb_config *config,
                                        const char *pattern,
                                        size_t pattern_len);

// Above `event_limit` members (default 100) a destination sends no join/leave MESSAGEs and
// no snapshots (its count is still kept); an "x-presence-info" longer than `max_info` bytes
// (default 256) is refused with an ERROR.
//
// # Safety
// `config` is NULL or a live config.
enum wsb_result wsb_config_set_presence_limits(struct wsb_config *config,
                                               size_t event_limit,
                                               size_t max_info);

// Reads the presence members of `destination` (none: a page with count 0).
// `*out_presence` is written on success; free it with `wsb_presence_free`. A pattern is
// `WSB_ERR_INVALID_ARGUMENT`.
//
// # Safety
// `server` is NULL or a live server; `destination` is NULL or valid for `destination_len`
// bytes; `out_presence` is NULL or valid for writing.
enum wsb_result wsb_server_presence(struct wsb_server *server,
                                    const char *destination,
                                    size_t destination_len,
                                    struct wsb_presence **out_presence);

// Frees a presence page (NULL is ignored).
//
// # Safety
// `presence` is NULL or a page from `wsb_server_presence` not freed before.
void wsb_presence_free(struct wsb_presence *presence);

// How many members the page holds (0 for NULL).
//
// # Safety
// `presence` is NULL or a live page.
size_t wsb_presence_count(const struct wsb_presence *presence);

// Member `index` (0 = the earliest to join): its session id, user and client info
// ("x-presence-info"), each string NULL with length 0 when absent. Any out-pointer may be
// NULL. `WSB_ERR_INVALID_ARGUMENT` past the end.
//
// # Safety
// `presence` is NULL or a live page; each out-pointer is NULL or valid for writing.
enum wsb_result wsb_presence_member(const struct wsb_presence *presence,
                                    size_t index,
                                    uint64_t *out_session,
                                    const char **out_user,
                                    size_t *out_user_len,
                                    const char **out_info,
                                    size_t *out_info_len);

// Registers a raw WebSocket endpoint at `path` (exact match of the request path, not the
// STOMP path); before or after `wsb_server_start`. `behaviour` is `WSB_RAW_*`;
// `WSB_RAW_HOST` needs poll or callback delivery. `subprotocols` is a comma-separated list
// in preference order (NULL/0: none is ever selected); `slow_consumer_policy` is
// `WSB_SLOW_CONSUMER_*` or `WSB_RAW_POLICY_SERVER`; `max_message_size` bounds client
// messages (0: the server's limit). Every raw endpoint reports `WSB_EVENT_RAW_OPEN` and
// `WSB_EVENT_RAW_CLOSE` when events are on. Strings are copied.
//
// # Safety
// `server` is NULL or a live server; `path` and `subprotocols` are NULL or valid for their
// lengths.
enum wsb_result wsb_server_add_raw_endpoint(struct wsb_server *server,
                                            const char *path,
                                            size_t path_len,
                                            uint32_t behaviour_kind,
                                            const char *subprotocols,
                                            size_t subprotocols_len,
                                            uint32_t slow_consumer_policy,
                                            size_t max_message_size);

// As `wsb_server_add_raw_endpoint`, and the endpoint is also served over SockJS 0.3 with its
// path as the SockJS prefix (`PATH/info`, `PATH/<server>/<session>/xhr`, ...,
// `PATH/websocket`), for clients such as sockjs-client. `websocket` offers SockJS's websocket
// transport; `cookie_needed` sets a JSESSIONID cookie; `response_limit` (0: the server's)
// ends streaming responses after that many bytes. SockJS carries text: binary messages are
// not sent to SockJS connections (counted in `dropped`).
//
// # Safety
// As `wsb_server_add_raw_endpoint`.
enum wsb_result wsb_server_add_raw_sockjs_endpoint(struct wsb_server *server,
                                                   const char *path,
                                                   size_t path_len,
                                                   uint32_t behaviour_kind,
                                                   uint32_t slow_consumer_policy,
                                                   size_t max_message_size,
                                                   bool websocket,
                                                   bool cookie_needed,
                                                   size_t response_limit);

// Subscribes raw connection `conn` to `topic` (exact name; copied). `*out_added` (may be
// NULL) is 1 when it was added, 0 when it was already subscribed.
//
// # Safety
// `server` is NULL or a live server; `topic` is NULL or valid for `topic_len` bytes;
// `out_added` is NULL or valid for writing.
enum wsb_result wsb_server_raw_subscribe(struct wsb_server *server,
                                         uint64_t conn,
                                         const char *topic,
                                         size_t topic_len,
                                         uint32_t *out_added);

// Unsubscribes raw connection `conn` from `topic`. `*out_removed` (may be NULL) is 1 when it
// was subscribed, 0 otherwise.
//
// # Safety
// `server` is NULL or a live server; `topic` is NULL or valid for `topic_len` bytes;
// `out_removed` is NULL or valid for writing.
enum wsb_result wsb_server_raw_unsubscribe(struct wsb_server *server,
                                           uint64_t conn,
                                           const char *topic,
                                           size_t topic_len,
                                           uint32_t *out_removed);

// Sends `data` as one message (`binary` 0: text, must be UTF-8; 1: binary) to every raw
// connection subscribed to `topic`. Copied once and shared by every receiver; never blocks.
// `*out_receivers` (may be NULL) is how many connections queued it.
//
// # Safety
// `server` is NULL or a live server; `topic` and `data` are NULL or valid for their
// lengths; `out_receivers` is NULL or valid for writing.
enum wsb_result wsb_server_raw_publish(struct wsb_server *server,
                                       const char *topic,
                                       size_t topic_len,
                                       const uint8_t *data,
                                       size_t data_len,
                                       uint32_t binary,
                                       size_t *out_receivers);

// Sends `data` as one message (`binary` 0: text, must be UTF-8; 1: binary) to raw connection
// `conn`. Copied; never blocks: `WSB_ERR_BACKPRESSURE` when it was not queued (the
// connection is closing or, under a drop policy, its queue is full).
//
// # Safety
// `server` is NULL or a live server; `data` is NULL or valid for `data_len` bytes.
enum wsb_result wsb_server_raw_send(struct wsb_server *server,
                                    uint64_t conn,
                                    const uint8_t *data,
                                    size_t data_len,
                                    uint32_t binary);

// Closes raw connection `conn` with WebSocket close `code` (1000-1003, 1007-1014,
// 3000-4999) and `reason` (at most 123 bytes, copied; NULL/0 for none) after what is
// already queued for it.
//
// # Safety
// `server` is NULL or a live server; `reason` is NULL or valid for `reason_len` bytes.
enum wsb_result wsb_server_raw_close(struct wsb_server *server,
                                     uint64_t conn,
                                     uint16_t code,
                                     const char *reason,
                                     size_t reason_len);

// Attaches a host value to raw connection `conn` (a pointer cast to `uint64_t`, an index,
// ...; the host owns whatever it refers to). 0 until set.
//
// # Safety
// `server` is NULL or a live server.
enum wsb_result wsb_server_raw_set_user_data(struct wsb_server *server,
                                             uint64_t conn,
                                             uint64_t value);

// The host value attached to raw connection `conn`, in `*out_value`.
//
// # Safety
// `server` is NULL or a live server; `out_value` is NULL or valid for writing.
enum wsb_result wsb_server_raw_user_data(const struct wsb_server *server,
                                         uint64_t conn,
                                         uint64_t *out_value);

// Bytes queued for raw connection `conn` and not yet handed to its socket, in `*out_bytes`
// (uWebSockets' `getBufferedAmount`).
//
// # Safety
// `server` is NULL or a live server; `out_bytes` is NULL or valid for writing.
enum wsb_result wsb_server_raw_buffered_bytes(const struct wsb_server *server,
                                              uint64_t conn,
                                              size_t *out_bytes);

// The request path without the query (e.g. "/ws"). Writes a NUL-terminated string (valid
// during the callback) to `*out` and its length to `*out_len`.
//
// # Safety
// `request` is NULL or the callback's request; `out` and `out_len` are NULL or writable.
enum wsb_result wsb_upgrade_request_path(const struct wsb_upgrade_request *request,
                                         const char **out,
                                         size_t *out_len);

// The raw query string (after `?`, not decoded). No query: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// As `wsb_upgrade_request_path`.
enum wsb_result wsb_upgrade_request_query(const struct wsb_upgrade_request *request,
                                          const char **out,
                                          size_t *out_len);

// A query parameter by name, percent-decoded ("+" as a space), e.g. the `token` of
// "/ws?token=abc". Absent, or not UTF-8 once decoded: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// As `wsb_upgrade_request_path`; `name` is NULL or valid for `name_len` bytes.
enum wsb_result wsb_upgrade_request_query_param(const struct wsb_upgrade_request *request,
                                                const char *name,
                                                size_t name_len,
                                                const char **out,
                                                size_t *out_len);

// The first value of a request header, by name in any case (e.g. "Authorization",
// "Origin"). Absent: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// As `wsb_upgrade_request_query_param`.
enum wsb_result wsb_upgrade_request_header(const struct wsb_upgrade_request *request,
                                           const char *name,
                                           size_t name_len,
                                           const char **out,
                                           size_t *out_len);

// A cookie from the request's `Cookie` header(s), by exact name (surrounding double quotes
// removed). Absent: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// As `wsb_upgrade_request_query_param`.
enum wsb_result wsb_upgrade_request_cookie(const struct wsb_upgrade_request *request,
                                           const char *name,
                                           size_t name_len,
                                           const char **out,
                                           size_t *out_len);

// The peer address, e.g. "127.0.0.1:53412" or "[::1]:53412". Unknown: `WSB_ERR_NOT_FOUND`.
//
// # Safety
// As `wsb_upgrade_request_path`.
enum wsb_result wsb_upgrade_request_remote_addr(const struct wsb_upgrade_request *request,
                                                const char **out,
                                                size_t *out_len);

// Accepts the upgrade, as `principal` (copied; NULL: no principal). The principal becomes
// the STOMP session's user ("/user/..." destinations, the subscribe decision's user) unless
// the connect decision names another one.
//
// # Safety
// `decision` is NULL or the callback's decision; `principal` is NULL or valid for
// `principal_len` bytes.
enum wsb_result wsb_upgrade_accept(struct wsb_upgrade_decision *decision,
                                   const char *principal,
                                   size_t principal_len);

// Refuses the upgrade with HTTP `status` (400-499: 401 when the client did not prove who it
// is, 403 when it may not connect; others are `WSB_ERR_INVALID_ARGUMENT`) and a one-line
// `reason` (copied) sent as the response body.
//
// # Safety
// `decision` is NULL or the callback's decision; `reason` is NULL or valid for `reason_len`
// bytes.
enum wsb_result wsb_upgrade_reject(struct wsb_upgrade_decision *decision,
                                   uint16_t status,
                                   const char *reason,
                                   size_t reason_len);

// Sets the upgrade callback, which decides on every WebSocket upgrade request (after the
// protocol, path and Origin checks) — replacing an earlier one, whose drop runs once no call
// of it is in progress. With `cb` NULL the hook is removed (every request is accepted
// without a principal) and a given `drop(user_data)` runs at once. Plain-TCP STOMP
// connections have no upgrade and are not asked. May be called before or after start.
//
// # Safety
// `server` is NULL or a live server; `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_server_set_upgrade_callback(struct wsb_server *server,
                                                wsb_upgrade_callback cb,
                                                void *user_data,
                                                wsb_drop_callback drop);

// A client config for `url` (`ws://host:port/path`, `wss://...`, `stomp://host:port`,
// `stomp+ssl://host:port`; checked by `wsb_client_new`) with every default: STOMP mode, no
// login, heart-beats 10 s / 10 s, permessage-deflate offered, TLS trusting the system's
// roots, reconnection on (200 ms doubling to 10 s, jittered), outbound queue of 4096 with
// a 5 s block, poll delivery. Copied. `*out_config` is written on success.
//
// # Safety
// `url` is NULL or valid for `url_len` bytes; `out_config` is NULL or valid for writing.
enum wsb_result wsb_client_config_new(const char *url,
                                      size_t url_len,
                                      struct wsb_client_config **out_config);

// Frees a client config (NULL is fine), running the drop of its callbacks that no client
// took over.
//
// # Safety
// `config` is NULL or a pointer from `wsb_client_config_new` not freed before.
void wsb_client_config_free(struct wsb_client_config *config);

// CONNECT `login` and `passcode` headers; NULL leaves one out. Copied.
//
// # Safety
// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
enum wsb_result wsb_client_config_set_login(struct wsb_client_config *config,
                                            const char *login,
                                            size_t login_len,
                                            const char *passcode,
                                            size_t passcode_len);

// CONNECT `host` header (RabbitMQ's virtual host, e.g. "/"); NULL: none (default). Copied.
//
// # Safety
// `config` is NULL or a live client config; `host` is NULL or valid for `host_len` bytes.
enum wsb_result wsb_client_config_set_host(struct wsb_client_config *config,
                                           const char *host,
                                           size_t host_len);

// Adds a header: to every CONNECT frame (`websocket` false: a token the server's connect
// hook reads) or to the WebSocket upgrade request (`websocket` true: `Authorization`,
// `Cookie`, `Origin`). Checked by `wsb_client_new`. Copied.
//
// # Safety
// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
enum wsb_result wsb_client_config_add_header(struct wsb_client_config *config,
                                             bool websocket,
                                             const char *name,
                                             size_t name_len,
                                             const char *value,
                                             size_t value_len);

// Raw WebSocket mode (`raw` true: text and binary messages, no STOMP; `ws://` and `wss://`
// only), offering `subprotocol` when not NULL. Default: STOMP. Copied.
//
// # Safety
// `config` is NULL or a live client config; `subprotocol` is NULL or valid for its length.
enum wsb_result wsb_client_config_set_raw(struct wsb_client_config *config,
                                          bool raw,
                                          const char *subprotocol,
                                          size_t subprotocol_len);

// STOMP heart-beats offered in CONNECT (0 turns a direction off; default 10000, 10000). The
// negotiated receive interval is enforced: twice that without a byte from the server drops
// the connection. Raw mode: the client pings every `send_ms`.
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_heartbeat(struct wsb_client_config *config,
                                                uint32_t send_ms,
                                                uint32_t receive_ms);

// Offer permessage-deflate (default true).
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_permessage_deflate(struct wsb_client_config *config,
                                                         bool enabled);

// TLS trust: the system's certificate store (`system_roots`, default true) and/or a PEM CA
// bundle file (`ca_pem`, NULL: none); `server_name` overrides the name the certificate must
// carry (NULL: the URL's host). Files are read by `wsb_client_new`. Copied.
//
// # Safety
// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
enum wsb_result wsb_client_config_set_tls(struct wsb_client_config *config,
                                          bool system_roots,
                                          const char *ca_pem,
                                          size_t ca_pem_len,
                                          const char *server_name,
                                          size_t server_name_len);

// A TLS client certificate: PEM chain and private key files (both, or both NULL to remove
// it). Read by `wsb_client_new`. Copied.
//
// # Safety
// `config` is NULL or a live client config; the strings are NULL or valid for their lengths.
enum wsb_result wsb_client_config_set_tls_client_cert(struct wsb_client_config *config,
                                                      const char *cert_pem,
                                                      size_t cert_pem_len,
                                                      const char *key_pem,
                                                      size_t key_pem_len);

// Bound of one connection attempt (TCP, TLS, upgrade, CONNECTED; default 10000 ms, > 0) and
// of the receipt the client waits for on its own (DISCONNECT in `wsb_client_free`; 5000).
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_timeouts(struct wsb_client_config *config,
                                               uint32_t connect_ms,
                                               uint32_t receipt_ms);

// Automatic reconnection: on or off, the first delay (doubling after each failure, with up
// to 20 % jitter) up to `max_delay_ms`, and `max_attempts` consecutive failures before
// giving up (0: never). Default on, 200, 10000, 0.
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_reconnect(struct wsb_client_config *config,
                                                bool enabled,
                                                uint32_t initial_delay_ms,
                                                uint32_t max_delay_ms,
                                                uint32_t max_attempts);

// The outbound queue between the host's threads and the network thread: `capacity` (> 0,
// default 4096) and what a call does when it is full: `WSB_QUEUE_BLOCK` (wait up to
// `block_timeout_ms`, default 5000) or `WSB_QUEUE_FAIL_FAST`; both then fail with
// `WSB_ERR_BACKPRESSURE`. Calls from inside a client callback never wait.
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_outbound_queue(struct wsb_client_config *config,
                                                     size_t capacity,
                                                     uint32_t policy,
                                                     uint32_t block_timeout_ms);

// How events reach the host: `WSB_DELIVERY_POLL` (default: `wsb_client_poll*`, with an
// optional wake callback) or `WSB_DELIVERY_CALLBACK` (the event callback, on the network
// thread). In poll mode, `capacity` (> 0, default 65536) bounds the queue and `overflow`
// (`WSB_OVERFLOW_*`) says what a full queue drops.
//
// # Safety
// `config` is NULL or a live client config.
enum wsb_result wsb_client_config_set_delivery(struct wsb_client_config *config,
                                               uint32_t mode,
                                               size_t capacity,
                                               uint32_t overflow);

// Poll mode: `cb(user_data)` runs on the network thread when the event queue goes from
// empty to non-empty (signal a condition variable, post to the main loop). Replaces (and
// drops) an earlier one; `cb` NULL clears it (a given `drop(user_data)` runs at once). Its
// `drop(user_data)` runs once: when replaced, or when the config and every client made from
// it are freed.
//
// # Safety
// `config` is NULL or a live client config; `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_client_config_set_wake_callback(struct wsb_client_config *config,
                                                    wsb_wake_callback cb,
                                                    void *user_data,
                                                    wsb_drop_callback drop);

// Callback mode: `cb(user_data, event)` receives every event, in order, on the network
// thread. Replaces (and drops) an earlier one; `cb` NULL clears it. `drop(user_data)` runs
// once, like the wake callback's.
//
// # Safety
// `config` is NULL or a live client config; `cb` and `drop` are NULL or valid functions.
enum wsb_result wsb_client_config_set_event_callback(struct wsb_client_config *config,
                                                     wsb_client_event_callback cb,
                                                     void *user_data,
                                                     wsb_drop_callback drop);

// Creates a client from `config` (validated now, TLS files read now: `WSB_ERR_INVALID_CONFIG`
// names the bad field). The config's callbacks are shared with the client. Does not connect:
// call `wsb_client_connect` or `wsb_client_start`. `*out_client` is written on success.
//
// # Safety
// `config` is NULL or a live client config; `out_client` is NULL or valid for writing.
enum wsb_result wsb_client_new(struct wsb_client_config *config, struct wsb_client **out_client);

// Disconnects (DISCONNECT with its receipt, bounded by the receipt timeout), stops the
// client's thread, runs the drop callbacks it holds and frees it. NULL is fine. From inside
// a wsbroker callback: `WSB_ERR_CALLED_FROM_CALLBACK`, and nothing is freed.
//
// # Safety
// `client` is NULL or a pointer from `wsb_client_new` not freed before; no other call on it
// may run or follow.
enum wsb_result wsb_client_free(struct wsb_client *client);

// Starts the client and waits up to `timeout_ms` for its first connection (STOMP:
// CONNECTED). A failed first attempt stops the client and says why: `WSB_ERR_REFUSED` (an
// ERROR frame, an HTTP status), `WSB_ERR_NOT_CONNECTED` (unreachable, TLS), `WSB_ERR_TIMEOUT`.
// Once connected, lost connections are re-made per the reconnect policy.
//
// # Safety
// `client` is NULL or a live client.
enum wsb_result wsb_client_connect(struct wsb_client *client, uint32_t timeout_ms);

// Starts the client without waiting: events say what happens (CONNECTED, DISCONNECTED with
// `reconnecting`); the first attempt is retried per the reconnect policy.
//
// # Safety
// `client` is NULL or a live client.
enum wsb_result wsb_client_start(struct wsb_client *client);

// Whether a connection is up, into `*out_connected`.
//
// # Safety
// `client` is NULL or a live client; `out_connected` is NULL or valid for writing.
enum wsb_result wsb_client_is_connected(const struct wsb_client *client, bool *out_connected);

// Subscribes (re-made on every reconnection, resuming with `x-since` when the server gave
// offsets); `ack_mode` is a `WSB_ACK_*` value, `headers` go into the SUBSCRIBE (copied).
// With `timeout_ms` > 0, waits for the server's RECEIPT (then messages published to the
// destination reach it). Writes the subscription id (never reused) to `*out_subscription`.
//
// # Safety
// `client` is NULL or a live client; pointers are NULL or valid for their lengths/counts;
// `out_subscription` is NULL or valid for writing.
enum wsb_result wsb_client_subscribe(struct wsb_client *client,
                                     const char *destination,
                                     size_t destination_len,
                                     uint32_t ack_mode,
                                     const struct wsb_header *headers,
                                     size_t header_count,
                                     uint32_t timeout_ms,
                                     uint64_t *out_subscription);

// Ends a subscription (`WSB_ERR_NOT_FOUND` for an unknown id).
//
// # Safety
// `client` is NULL or a live client.
enum wsb_result wsb_client_unsubscribe(struct wsb_client *client, uint64_t subscription);

// SENDs a message (destination, headers and body copied), inside `transaction` when not 0
// (from `wsb_client_begin`). With `receipt_timeout_ms` 0 it only queues (never waiting
// longer than the outbound queue's policy); with > 0 it waits for the server's RECEIPT:
// `WSB_ERR_TIMEOUT` when none came, `WSB_ERR_REFUSED` for an ERROR, `WSB_ERR_NOT_CONNECTED`
// when the connection was lost first (the message may or may not have arrived).
//
// # Safety
// `client` is NULL or a live client; every pointer is NULL or valid for its length/count.
enum wsb_result wsb_client_send(struct wsb_client *client,
                                const char *destination,
                                size_t destination_len,
                                const struct wsb_header *headers,
                                size_t header_count,
                                const uint8_t *body,
                                size_t body_len,
                                uint64_t transaction,
                                uint32_t receipt_timeout_ms);

// Acknowledges a message by its event's `ack_id`, inside `transaction` when not 0. An ack id
// of an earlier connection is `WSB_ERR_NOT_FOUND` (the server redelivers that message).
//
// # Safety
// `client` is NULL or a live client; `ack_id` is NULL or valid for `ack_id_len` bytes.
enum wsb_result wsb_client_ack(struct wsb_client *client,
                               const char *ack_id,
                               size_t ack_id_len,
                               uint64_t transaction);

// Refuses a message (NACK), like `wsb_client_ack`.
//
// # Safety
// As `wsb_client_ack`.
enum wsb_result wsb_client_nack(struct wsb_client *client,
                                const char *ack_id,
                                size_t ack_id_len,
                                uint64_t transaction);

// BEGINs a transaction; its id (never 0) goes to `*out_transaction`. A transaction lives on
// one connection: after a reconnection committing it is `WSB_ERR_NOT_FOUND`.
//
// # Safety
// `client` is NULL or a live client; `out_transaction` is NULL or valid for writing.
enum wsb_result wsb_client_begin(struct wsb_client *client, uint64_t *out_transaction);

// COMMITs (`commit` true) or ABORTs a transaction, waiting up to `receipt_timeout_ms` for the
// server's RECEIPT when > 0.
//
// # Safety
// `client` is NULL or a live client.
enum wsb_result wsb_client_end_transaction(struct wsb_client *client,
                                           uint64_t transaction,
                                           bool commit,
                                           uint32_t receipt_timeout_ms);

// Raw mode: sends a message (`binary` true: binary; false: text, which must be UTF-8).
// Copied; queued like a SEND.
//
// # Safety
// `client` is NULL or a live client; `data` is NULL or valid for `data_len` bytes.
enum wsb_result wsb_client_send_raw(struct wsb_client *client,
                                    const uint8_t *data,
                                    size_t data_len,
                                    bool binary);

// Poll mode: moves up to `max_events` queued events into `events[0..*out_count]` without
// blocking (a game loop calls it once per frame). Their pointers stay valid until this
// thread's next poll on this client (or `wsb_client_free`). In callback mode:
// `WSB_ERR_INVALID_ARGUMENT`.
//
// # Safety
// `client` is NULL or a live client; `events` is NULL or valid for `max_events` writes;
// `out_count` is NULL or valid for writing.
enum wsb_result wsb_client_poll(struct wsb_client *client,
                                struct wsb_client_event *events,
                                size_t max_events,
                                size_t *out_count);

// Like `wsb_client_poll`, but waits up to `timeout_ms` for the first event.
//
// # Safety
// As `wsb_client_poll`.
enum wsb_result wsb_client_poll_timeout(struct wsb_client *client,
                                        struct wsb_client_event *events,
                                        size_t max_events,
                                        uint32_t timeout_ms,
                                        size_t *out_count);

// Ends the session: DISCONNECT, waits up to `timeout_ms` for its RECEIPT (raw mode: a Close
// frame), closes and stops the client's thread (events already queued can still be polled).
// `WSB_ERR_NOT_RUNNING` when not started or already stopped; from inside a callback
// `WSB_ERR_CALLED_FROM_CALLBACK`.
//
// # Safety
// `client` is NULL or a live client.
enum wsb_result wsb_client_disconnect(struct wsb_client *client, uint32_t timeout_ms);

// The detail message of the last failed call on this client (from any thread), like
// `wsb_server_last_error`.
//
// # Safety
// `client` is NULL or a live client; `buf` is NULL or valid for `cap` bytes of writing;
// `out_len` is NULL or valid for writing.
enum wsb_result wsb_client_last_error(const struct wsb_client *client,
                                      char *buf,
                                      size_t cap,
                                      size_t *out_len);

#ifdef __cplusplus
}  // extern "C"
#endif  // __cplusplus

#endif  /* WSBROKER_H */
