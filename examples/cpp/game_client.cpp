/*
 * game_client.cpp - a C++17 game-loop client of the C chat server (examples/c/chat_server.c),
 * through the header-only wrapper include/wsbroker.hpp.
 *
 * Each frame (60 Hz) the loop polls the client once - the message lambdas run right there, on
 * the game thread - then "renders". Every 10th frame it says something in room 5: a SEND to
 * /app/chat that the C server publishes to /topic/chat/room/5, which comes back to this
 * client. Half way it sends one message without a room: the server refuses it and closes the
 * session, the client reconnects by itself, re-subscribes (reported with recovered=false: the
 * chat server keeps no history) and the conversation goes on.
 *
 * Build (from the repository root, after `cargo build --release`):
 *   c++ -std=c++17 -Wall -Wextra -Werror -Iinclude examples/cpp/game_client.cpp \
 *       -Ltarget/release -lwsbroker -Wl,-rpath,$PWD/target/release -o game_client
 * Run (against ./chat_server --port 61614):
 *   ./game_client --url ws://127.0.0.1:61614/ws --messages 6
 *
 * Exit codes: 0 when every message came back (and the reconnection happened), 1 on a wsbroker
 * error or a timeout, 2 on a bad command line.
 */
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "wsbroker.hpp"

namespace {

struct Options {
    std::string url = "ws://127.0.0.1:61614/ws";
    int messages = 6;
    int timeout_s = 30;
};

bool parse(int argc, char **argv, Options &o) {
    for (int i = 1; i < argc; i++) {
        std::string arg = argv[i];
        if (i + 1 >= argc) {
            return false;
        }
        if (arg == "--url") {
            o.url = argv[++i];
        } else if (arg == "--messages") {
            o.messages = std::atoi(argv[++i]);
        } else if (arg == "--timeout") {
            o.timeout_s = std::atoi(argv[++i]);
        } else {
            return false;
        }
    }
    return o.messages > 1 && o.timeout_s > 0;
}

std::string chat(int n) {
    return "{\"chatRoomId\": 5, \"type\": \"MESSAGE\", \"writer\": \"cpp-game\", \"message\": "
           "\"frame " +
           std::to_string(n) + "\"}";
}

} // namespace

int main(int argc, char **argv) {
    Options options;
    if (!parse(argc, argv, options)) {
        std::fprintf(stderr, "usage: game_client [--url ws://host:port/ws] [--messages N>1] "
                             "[--timeout SECONDS]\n");
        return 2;
    }
    try {
        wsb::Client client(wsb::ClientConfig(options.url)
                               .heartbeat(std::chrono::seconds(2), std::chrono::seconds(2))
                               .reconnect(true, std::chrono::milliseconds(50),
                                          std::chrono::milliseconds(500)));
        int received = 0, sent = 0, reconnections = 0, resubscribed = 0, errors = 0;
        bool refused_sent = false;
        client.on_connected([&](bool reconnected) {
            if (reconnected) {
                reconnections++;
            }
        });
        client.on_resubscribed([&](uint64_t, bool recovered) {
            resubscribed++;
            std::printf("resubscribed (recovered=%s)\n", recovered ? "true" : "false");
        });
        client.on_error([&](const std::string &message) {
            errors++;
            std::printf("server error: %s\n", message.c_str());
        });
        client.connect(std::chrono::seconds(10));
        client.subscribe(
            "/topic/chat/room/5",
            [&](const wsb::Message &m) {
                received++;
                std::printf("frame message %d: %s\n", received, m.body.c_str());
            },
            wsb::Ack::Auto, {}, std::chrono::seconds(5));

        const auto frame = std::chrono::microseconds(1000000 / 60);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(options.timeout_s);
        auto next = std::chrono::steady_clock::now();
        for (long tick = 0; std::chrono::steady_clock::now() < deadline; tick++) {
            client.poll(); // the lambdas run here, on the game thread
            bool done = received >= options.messages && reconnections >= 1 && resubscribed >= 1;
            if (done) {
                break;
            }
            if (tick % 10 == 0 && client.connected()) {
                if (!refused_sent && sent == options.messages / 2 && received == sent) {
                    // No chatRoomId: the server refuses it and closes the session.
                    client.send("/app/chat", "{\"type\": \"MESSAGE\"}");
                    refused_sent = true;
                } else if (sent < options.messages && (!refused_sent || reconnections >= 1) &&
                           sent - received < 2) {
                    client.send("/app/chat", chat(++sent), {{"content-type", "application/json"}});
                }
            }
            next += frame; // render, then sleep until the next frame
            std::this_thread::sleep_until(next);
        }
        std::printf("received %d/%d, reconnections %d, resubscribed %d, errors %d\n", received,
                    options.messages, reconnections, resubscribed, errors);
        client.disconnect(std::chrono::seconds(2));
        if (received < options.messages || reconnections < 1 || resubscribed < 1) {
            std::fprintf(stderr, "game_client: timed out\n");
            return 1;
        }
        return 0;
    } catch (const wsb::Error &e) {
        std::fprintf(stderr, "game_client: %s (code %d)\n", e.what(), static_cast<int>(e.code()));
        return 1;
    }
}
