/*
 * wsbroker.hpp - header-only C++17 RAII wrapper of the wsbroker C API (wsbroker.h).
 *
 *   wsb::Server   an embedded STOMP broker: start, publish, application handlers as lambdas
 *   wsb::Client   a STOMP (or raw WebSocket) client for any broker, with reconnection:
 *                 subscribe with a lambda per subscription, send, ack, transactions, and
 *                 poll() from your own loop (a game loop calls it once per frame) to run
 *                 the lambdas on your thread
 *
 * Errors are wsb::Error exceptions (a std::runtime_error carrying the wsb_result code and
 * the library's detail message). No exception ever crosses into the library: a lambda that
 * throws inside a library callback is caught there (an application handler's exception
 * refuses the message with its what()). Objects own their C handle and free it in their
 * destructor; they are movable, not copyable. Link with -lwsbroker.
 *
 *   wsb::Client client(wsb::ClientConfig("ws://127.0.0.1:61614/ws").login("guest", "guest"));
 *   client.connect(std::chrono::seconds(5));
 *   client.subscribe("/topic/chat", [](const wsb::Message &m) { std::puts(m.body.c_str()); });
 *   client.send("/app/chat", "{\"text\":\"hi\"}");
 *   for (;;) { client.poll(); render_frame(); }
 */
#ifndef WSBROKER_HPP
#define WSBROKER_HPP

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wsbroker.h"

namespace wsb {

/// A failed wsbroker call: the result code and the detail message.
class Error : public std::runtime_error {
public:
    Error(wsb_result code, const std::string &message)
        : std::runtime_error(message), code_(code) {}
    /// The WSB_ERR_* code.
    wsb_result code() const noexcept { return code_; }

private:
    wsb_result code_;
};

/// Headers as name/value pairs, in order.
using Headers = std::vector<std::pair<std::string, std::string>>;

namespace detail {

inline std::string thread_last_error() {
    size_t len = wsb_last_error(nullptr, 0);
    std::string text(len, '\0');
    if (len > 0) {
        wsb_last_error(&text[0], len + 1);
    }
    return text;
}

inline void check(wsb_result rc, const char *what) {
    if (rc != WSB_OK) {
        throw Error(rc, std::string(what) + ": " + wsb_result_str(static_cast<int>(rc)) + ": " +
                            thread_last_error());
    }
}

inline std::string str(const char *ptr, size_t len) {
    return ptr == nullptr ? std::string() : std::string(ptr, len);
}

/// C views of a header list (valid while `headers` lives).
inline std::vector<wsb_header> c_headers(const Headers &headers) {
    std::vector<wsb_header> out;
    out.reserve(headers.size());
    for (const auto &h : headers) {
        out.push_back(wsb_header{h.first.data(), h.first.size(), h.second.data(), h.second.size()});
    }
    return out;
}

inline Headers headers(const wsb_header *headers, size_t count) {
    Headers out;
    out.reserve(count);
    for (size_t i = 0; i < count; i++) {
        out.emplace_back(str(headers[i].name, headers[i].name_len),
                         str(headers[i].value, headers[i].value_len));
    }
    return out;
}

inline uint32_t ms(std::chrono::milliseconds d) {
    return d.count() <= 0 ? 0u : static_cast<uint32_t>(d.count());
}

template <typename F> void drop_function(void *user_data) { delete static_cast<F *>(user_data); }

} // namespace detail

// ---------------------------------------------------------------------------------------------
// Client
// ---------------------------------------------------------------------------------------------

/// A MESSAGE received by a client (copied out of the library's event).
struct Message {
    uint64_t subscription = 0;
    std::string destination;
    /// For client ack modes: pass the message to Client::ack / nack.
    std::string ack_id;
    Headers headers;
    /// The body (binary-safe).
    std::string body;

    /// The first header called `name`, or an empty string.
    std::string header(std::string_view name) const {
        for (const auto &h : headers) {
            if (h.first == name) {
                return h.second;
            }
        }
        return std::string();
    }
};

/// How a subscription acknowledges messages.
enum class Ack : uint32_t {
    Auto = WSB_ACK_AUTO,
    Client = WSB_ACK_CLIENT,
    ClientIndividual = WSB_ACK_CLIENT_INDIVIDUAL,
};

/// The settings of a client (builder style: every setter returns *this).
class ClientConfig {
public:
    explicit ClientConfig(std::string_view url) {
        detail::check(wsb_client_config_new(url.data(), url.size(), &config_),
                      "wsb_client_config_new");
    }
    ~ClientConfig() { wsb_client_config_free(config_); }
    ClientConfig(const ClientConfig &) = delete;
    ClientConfig &operator=(const ClientConfig &) = delete;
    ClientConfig(ClientConfig &&other) noexcept : config_(std::exchange(other.config_, nullptr)) {}
    ClientConfig &operator=(ClientConfig &&other) noexcept {
        std::swap(config_, other.config_);
        return *this;
    }

    /// CONNECT login and passcode.
    ClientConfig &login(std::string_view login, std::string_view passcode) {
        detail::check(wsb_client_config_set_login(config_, login.data(), login.size(),
                                                  passcode.data(), passcode.size()),
                      "wsb_client_config_set_login");
        return *this;
    }
    /// CONNECT host header (RabbitMQ: the virtual host, "/").
    ClientConfig &host(std::string_view host) {
        detail::check(wsb_client_config_set_host(config_, host.data(), host.size()),
                      "wsb_client_config_set_host");
        return *this;
    }
    /// A CONNECT header (a token), or with `websocket` an upgrade request header.
    ClientConfig &header(std::string_view name, std::string_view value, bool websocket = false) {
        detail::check(wsb_client_config_add_header(config_, websocket, name.data(), name.size(),
                                                   value.data(), value.size()),
                      "wsb_client_config_add_header");
        return *this;
    }
    /// Heart-beats (send, receive); zero turns a direction off.
    ClientConfig &heartbeat(std::chrono::milliseconds send, std::chrono::milliseconds receive) {
        detail::check(
            wsb_client_config_set_heartbeat(config_, detail::ms(send), detail::ms(receive)),
            "wsb_client_config_set_heartbeat");
        return *this;
    }
    /// Offer permessage-deflate (default on).
    ClientConfig &permessage_deflate(bool on) {
        detail::check(wsb_client_config_set_permessage_deflate(config_, on),
                      "wsb_client_config_set_permessage_deflate");
        return *this;
    }
    /// TLS trust: the system store and/or a CA bundle file ("" for none).
    ClientConfig &tls(bool system_roots, std::string_view ca_pem = {},
                      std::string_view server_name = {}) {
        detail::check(wsb_client_config_set_tls(
                          config_, system_roots, ca_pem.empty() ? nullptr : ca_pem.data(),
                          ca_pem.size(), server_name.empty() ? nullptr : server_name.data(),
                          server_name.size()),
                      "wsb_client_config_set_tls");
        return *this;
    }
    /// A TLS client certificate (PEM chain and key files).
    ClientConfig &client_certificate(std::string_view cert_pem, std::string_view key_pem) {
        detail::check(wsb_client_config_set_tls_client_cert(config_, cert_pem.data(),
                                                            cert_pem.size(), key_pem.data(),
                                                            key_pem.size()),
                      "wsb_client_config_set_tls_client_cert");
        return *this;
    }
    /// Reconnection (on by default): first delay, longest delay, attempts (0: forever).
    ClientConfig &reconnect(bool on, std::chrono::milliseconds initial = std::chrono::milliseconds(200),
                            std::chrono::milliseconds max = std::chrono::milliseconds(10000),
                            uint32_t max_attempts = 0) {
        detail::check(wsb_client_config_set_reconnect(config_, on, detail::ms(initial),
                                                      detail::ms(max), max_attempts),
                      "wsb_client_config_set_reconnect");
        return *this;
    }
    /// The outbound queue: capacity, and block up to `block` when full (zero: fail fast).
    ClientConfig &outbound_queue(size_t capacity, std::chrono::milliseconds block) {
        uint32_t policy = block.count() > 0 ? WSB_QUEUE_BLOCK : WSB_QUEUE_FAIL_FAST;
        detail::check(
            wsb_client_config_set_outbound_queue(config_, capacity, policy, detail::ms(block)),
            "wsb_client_config_set_outbound_queue");
        return *this;
    }
    /// Timeouts of one connection attempt and of the receipts the client waits for itself.
    ClientConfig &timeouts(std::chrono::milliseconds connect, std::chrono::milliseconds receipt) {
        detail::check(
            wsb_client_config_set_timeouts(config_, detail::ms(connect), detail::ms(receipt)),
            "wsb_client_config_set_timeouts");
        return *this;
    }
    /// Raw WebSocket mode (no STOMP), offering `subprotocol` when not empty.
    ClientConfig &raw(std::string_view subprotocol = {}) {
        detail::check(wsb_client_config_set_raw(config_, true,
                                                subprotocol.empty() ? nullptr : subprotocol.data(),
                                                subprotocol.size()),
                      "wsb_client_config_set_raw");
        return *this;
    }

    /// The C handle (still owned by this object).
    wsb_client_config *get() const noexcept { return config_; }

private:
    wsb_client_config *config_ = nullptr;
};

/// A STOMP or raw WebSocket client. Events are polled: poll() runs the lambdas on the
/// calling thread. Sending is thread-safe; poll from one thread.
class Client {
public:
    using MessageHandler = std::function<void(const Message &)>;

    explicit Client(const ClientConfig &config) {
        detail::check(wsb_client_new(config.get(), &client_), "wsb_client_new");
    }
    ~Client() { wsb_client_free(client_); }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    Client(Client &&other) noexcept
        : client_(std::exchange(other.client_, nullptr)), handlers_(std::move(other.handlers_)),
          on_connected_(std::move(other.on_connected_)),
          on_disconnected_(std::move(other.on_disconnected_)),
          on_resubscribed_(std::move(other.on_resubscribed_)),
          on_error_(std::move(other.on_error_)), on_raw_(std::move(other.on_raw_)) {}

    /// Connects, waiting up to `timeout` for CONNECTED (throws wsb::Error on failure).
    void connect(std::chrono::milliseconds timeout) {
        check(wsb_client_connect(client_, detail::ms(timeout)), "wsb_client_connect");
    }
    /// Starts connecting in the background (events tell what happens).
    void start() { check(wsb_client_start(client_), "wsb_client_start"); }
    /// Whether a connection is up.
    bool connected() const {
        bool up = false;
        check(wsb_client_is_connected(client_, &up), "wsb_client_is_connected");
        return up;
    }

    /// Subscribes; `handler` runs in poll() for each message. With a `confirm` timeout,
    /// waits for the server's receipt. Returns the subscription id.
    uint64_t subscribe(std::string_view destination, MessageHandler handler, Ack ack = Ack::Auto,
                       const Headers &headers = {},
                       std::chrono::milliseconds confirm = std::chrono::milliseconds(0)) {
        auto c = detail::c_headers(headers);
        uint64_t id = 0;
        check(wsb_client_subscribe(client_, destination.data(), destination.size(),
                                   static_cast<uint32_t>(ack), c.data(), c.size(),
                                   detail::ms(confirm), &id),
              "wsb_client_subscribe");
        handlers_[id] = std::move(handler);
        return id;
    }
    /// Ends a subscription.
    void unsubscribe(uint64_t id) {
        check(wsb_client_unsubscribe(client_, id), "wsb_client_unsubscribe");
        handlers_.erase(id);
    }
    /// SENDs (queued); with a `receipt` timeout waits for the server's RECEIPT; inside
    /// `transaction` when not 0.
    void send(std::string_view destination, std::string_view body, const Headers &headers = {},
              std::chrono::milliseconds receipt = std::chrono::milliseconds(0),
              uint64_t transaction = 0) {
        auto c = detail::c_headers(headers);
        check(wsb_client_send(client_, destination.data(), destination.size(), c.data(),
                              c.size(), reinterpret_cast<const uint8_t *>(body.data()),
                              body.size(), transaction, detail::ms(receipt)),
              "wsb_client_send");
    }
    /// Acknowledges a message of a client-ack subscription.
    void ack(const Message &m, uint64_t transaction = 0) {
        check(wsb_client_ack(client_, m.ack_id.data(), m.ack_id.size(), transaction),
              "wsb_client_ack");
    }
    /// Refuses a message (NACK).
    void nack(const Message &m, uint64_t transaction = 0) {
        check(wsb_client_nack(client_, m.ack_id.data(), m.ack_id.size(), transaction),
              "wsb_client_nack");
    }
    /// Begins a transaction.
    uint64_t begin() {
        uint64_t tx = 0;
        check(wsb_client_begin(client_, &tx), "wsb_client_begin");
        return tx;
    }
    /// Commits a transaction (waiting for its receipt when `receipt` > 0).
    void commit(uint64_t tx, std::chrono::milliseconds receipt = std::chrono::milliseconds(0)) {
        check(wsb_client_end_transaction(client_, tx, true, detail::ms(receipt)), "commit");
    }
    /// Aborts a transaction.
    void abort(uint64_t tx, std::chrono::milliseconds receipt = std::chrono::milliseconds(0)) {
        check(wsb_client_end_transaction(client_, tx, false, detail::ms(receipt)), "abort");
    }
    /// Raw mode: a text or binary message.
    void send_raw(std::string_view data, bool binary = false) {
        check(wsb_client_send_raw(client_, reinterpret_cast<const uint8_t *>(data.data()),
                                  data.size(), binary),
              "wsb_client_send_raw");
    }

    /// Called in poll() when a connection is up (`reconnected` after a reconnection).
    void on_connected(std::function<void(bool reconnected)> f) { on_connected_ = std::move(f); }
    /// Called in poll() when the connection is lost (`reconnecting`: it will be re-made).
    void on_disconnected(std::function<void(const std::string &reason, bool reconnecting)> f) {
        on_disconnected_ = std::move(f);
    }
    /// Called in poll() when a subscription was re-made after a reconnection.
    void on_resubscribed(std::function<void(uint64_t id, bool recovered)> f) {
        on_resubscribed_ = std::move(f);
    }
    /// Called in poll() for a server ERROR frame.
    void on_error(std::function<void(const std::string &message)> f) { on_error_ = std::move(f); }
    /// Raw mode: called in poll() for each message.
    void on_raw(std::function<void(const std::string &data, bool binary)> f) {
        on_raw_ = std::move(f);
    }

    /// Takes up to `max` queued events (waiting up to `timeout` for the first) and runs the
    /// handlers on this thread. Returns how many events were handled.
    size_t poll(size_t max = 64, std::chrono::milliseconds timeout = std::chrono::milliseconds(0)) {
        std::vector<wsb_client_event> events(max);
        size_t n = 0;
        check(wsb_client_poll_timeout(client_, events.data(), events.size(), detail::ms(timeout),
                                      &n),
              "wsb_client_poll_timeout");
        for (size_t i = 0; i < n; i++) {
            dispatch(events[i]);
        }
        return n;
    }

    /// DISCONNECT, waiting up to `timeout` for its receipt, and stop.
    void disconnect(std::chrono::milliseconds timeout) {
        check(wsb_client_disconnect(client_, detail::ms(timeout)), "wsb_client_disconnect");
    }

    /// The C handle (still owned by this object).
    wsb_client *get() const noexcept { return client_; }

private:
    void check(wsb_result rc, const char *what) const {
        if (rc != WSB_OK) {
            size_t len = 0;
            std::string detail_text;
            if (client_ != nullptr && wsb_client_last_error(client_, nullptr, 0, &len) == WSB_OK) {
                detail_text.resize(len);
                if (len > 0) {
                    wsb_client_last_error(client_, &detail_text[0], len + 1, &len);
                }
            } else {
                detail_text = detail::thread_last_error();
            }
            throw Error(rc, std::string(what) + ": " + wsb_result_str(static_cast<int>(rc)) +
                                ": " + detail_text);
        }
    }

    void dispatch(const wsb_client_event &e) {
        switch (e.kind) {
        case WSB_CLIENT_EVENT_MESSAGE: {
            auto handler = handlers_.find(e.subscription);
            if (handler == handlers_.end() || !handler->second) {
                return;
            }
            Message m;
            m.subscription = e.subscription;
            m.destination = detail::str(e.destination, e.destination_len);
            m.ack_id = detail::str(e.ack_id, e.ack_id_len);
            m.headers = detail::headers(e.headers, e.header_count);
            m.body.assign(reinterpret_cast<const char *>(e.body), e.body_len);
            handler->second(m);
            break;
        }
        case WSB_CLIENT_EVENT_CONNECTED:
            if (on_connected_) {
                on_connected_(e.reconnected != 0);
            }
            break;
        case WSB_CLIENT_EVENT_DISCONNECTED:
            if (on_disconnected_) {
                on_disconnected_(detail::str(e.text, e.text_len), e.reconnecting != 0);
            }
            break;
        case WSB_CLIENT_EVENT_RESUBSCRIBED:
            if (on_resubscribed_) {
                on_resubscribed_(e.subscription, e.recovered != 0);
            }
            break;
        case WSB_CLIENT_EVENT_ERROR:
            if (on_error_) {
                on_error_(detail::str(e.text, e.text_len));
            }
            break;
        case WSB_CLIENT_EVENT_RAW:
            if (on_raw_) {
                on_raw_(std::string(reinterpret_cast<const char *>(e.body), e.body_len),
                        e.binary != 0);
            }
            break;
        default:
            break;
        }
    }

    wsb_client *client_ = nullptr;
    std::map<uint64_t, MessageHandler> handlers_;
    std::function<void(bool)> on_connected_;
    std::function<void(const std::string &, bool)> on_disconnected_;
    std::function<void(uint64_t, bool)> on_resubscribed_;
    std::function<void(const std::string &)> on_error_;
    std::function<void(const std::string &, bool)> on_raw_;
};

// ---------------------------------------------------------------------------------------------
// Server
// ---------------------------------------------------------------------------------------------

/// A SEND to an application destination, as an application handler sees it.
struct AppMessage {
    uint64_t session = 0;
    std::string user;
    std::string destination;
    Headers headers;
    std::string body;
};

/// The settings of a server (builder style).
class ServerConfig {
public:
    ServerConfig() { detail::check(wsb_config_new(&config_), "wsb_config_new"); }
    ~ServerConfig() { wsb_config_free(config_); }
    ServerConfig(const ServerConfig &) = delete;
    ServerConfig &operator=(const ServerConfig &) = delete;
    ServerConfig(ServerConfig &&other) noexcept : config_(std::exchange(other.config_, nullptr)) {}
    ServerConfig &operator=(ServerConfig &&other) noexcept {
        std::swap(config_, other.config_);
        return *this;
    }

    /// WebSocket listen address ("ip:port").
    ServerConfig &listen(std::string_view addr) {
        detail::check(wsb_config_set_listen(config_, addr.data(), addr.size()),
                      "wsb_config_set_listen");
        return *this;
    }
    /// Plain-TCP STOMP listen address.
    ServerConfig &tcp_listen(std::string_view addr) {
        detail::check(wsb_config_set_tcp_listen(config_, addr.data(), addr.size()),
                      "wsb_config_set_tcp_listen");
        return *this;
    }
    /// Runtime threads (0: one per core).
    ServerConfig &worker_threads(uint32_t n) {
        detail::check(wsb_config_set_worker_threads(config_, n), "wsb_config_set_worker_threads");
        return *this;
    }

    /// The C handle (still owned by this object).
    wsb_config *get() const noexcept { return config_; }

private:
    wsb_config *config_ = nullptr;
};

/// An embedded broker. Publishing is thread-safe and never blocks.
class Server {
public:
    /// Handles a SEND to an application destination; return an empty string to accept, or
    /// an error text to refuse it (so does throwing: its what() is the text).
    using AppHandler = std::function<std::string(const AppMessage &)>;

    explicit Server(const ServerConfig &config) {
        detail::check(wsb_server_new(config.get(), &server_), "wsb_server_new");
    }
    ~Server() { wsb_server_free(server_); }
    Server(const Server &) = delete;
    Server &operator=(const Server &) = delete;
    Server(Server &&other) noexcept : server_(std::exchange(other.server_, nullptr)) {}

    void start() { detail::check(wsb_server_start(server_), "wsb_server_start"); }
    void stop(std::chrono::milliseconds grace) {
        detail::check(wsb_server_stop(server_, detail::ms(grace)), "wsb_server_stop");
    }
    uint16_t port() const {
        uint16_t p = 0;
        detail::check(wsb_server_local_port(server_, &p), "wsb_server_local_port");
        return p;
    }
    uint16_t tcp_port() const {
        uint16_t p = 0;
        detail::check(wsb_server_tcp_port(server_, &p), "wsb_server_tcp_port");
        return p;
    }
    void publish(std::string_view destination, std::string_view body,
                 const Headers &headers = {}) {
        auto c = detail::c_headers(headers);
        detail::check(wsb_server_publish(server_, destination.data(), destination.size(),
                                         c.data(), c.size(),
                                         reinterpret_cast<const uint8_t *>(body.data()),
                                         body.size()),
                      "wsb_server_publish");
    }
    /// Runs `handler` (on a server thread) for SENDs to destinations matching `pattern`.
    void handle_app(std::string_view pattern, AppHandler handler) {
        auto *owned = new AppHandler(std::move(handler));
        wsb_result rc = wsb_server_handle_app(server_, pattern.data(), pattern.size(),
                                              &Server::app_trampoline, owned,
                                              &detail::drop_function<AppHandler>);
        if (rc != WSB_OK) {
            delete owned;
            detail::check(rc, "wsb_server_handle_app");
        }
    }

    /// The C handle (still owned by this object).
    wsb_server *get() const noexcept { return server_; }

private:
    static int app_trampoline(void *user_data, const wsb_event *e, char *error_buf,
                              size_t error_cap) noexcept {
        std::string error;
        try {
            AppMessage m;
            m.session = e->session;
            m.user = detail::str(e->user, e->user_len);
            m.destination = detail::str(e->destination, e->destination_len);
            m.headers = detail::headers(e->headers, e->header_count);
            m.body.assign(reinterpret_cast<const char *>(e->body), e->body_len);
            error = (*static_cast<AppHandler *>(user_data))(m);
        } catch (const std::exception &ex) {
            error = ex.what();
            if (error.empty()) {
                error = "handler failed";
            }
        } catch (...) {
            error = "handler failed";
        }
        if (error.empty()) {
            return 0;
        }
        if (error_buf != nullptr && error_cap > 0) {
            size_t n = error.size() < error_cap - 1 ? error.size() : error_cap - 1;
            error.copy(error_buf, n);
            error_buf[n] = '\0';
        }
        return 1;
    }

    wsb_server *server_ = nullptr;
};

} // namespace wsb

#endif /* WSBROKER_HPP */
