// Krill heartbeat client, header-only C++17, wire-compatible with the upstream Krill
// C++ SDK (one compact JSON object per line: type, service, status, metadata) and
// with its API (`krill::Client`, also `krill::KrillClient`).
//
//   krill::Client client;                 // KRILL_SERVICE / KRILL_SOCKET, set by krill
//   krill::Client client("my-service");   // socket: KRILL_SOCKET or /tmp/krill.sock
//   client.heartbeat();
//   client.report_degraded("low battery");
//
// A robot process must never be harmed by its heartbeat, so:
// - A call blocks for at most krill::SEND_TIMEOUT_MS (100 ms), connecting included.
// - A broken connection is dropped whole (a line is never torn); a later call
//   reconnects, with back-off from 50 ms to 2 s between failed attempts.
// - While disconnected, a call pings systemd's own watchdog when NOTIFY_SOCKET is set
//   (WATCHDOG=1; STATUS= carries a degraded reason), so the service also runs under
//   a plain unit with WatchdogSec=. Without it the call throws krill::KrillError; the
//   next call tries again.
// - No SIGPIPE (MSG_NOSIGNAL). A Client may be shared between threads.
// The constructor throws krill::KrillError if it cannot connect and there is no
// NOTIFY_SOCKET to fall back to (as upstream's does).
#pragma once

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace krill {

/// The longest a call blocks, in milliseconds.
constexpr int SEND_TIMEOUT_MS = 100;
/// Reconnect back-off after a failed attempt: doubles from MIN to MAX (ms).
constexpr int BACKOFF_MIN_MS = 50;
constexpr int BACKOFF_MAX_MS = 2000;

class KrillError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

inline std::string json_string(const std::string &s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                char buf[8];
                std::snprintf(buf, sizeof buf, "\\u%04x", c);
                out += buf;
            } else {
                out += static_cast<char>(c);
            }
        }
    }
    return out + "\"";
}

inline std::string encode(const std::string &service, const std::string &status,
                          const std::map<std::string, std::string> &metadata) {
    std::string out = "{\"type\":\"heartbeat\",\"service\":" + json_string(service) +
                      ",\"status\":" + json_string(status) + ",\"metadata\":{";
    bool first = true;
    for (const auto &kv : metadata) {
        if (!first) out += ",";
        first = false;
        out += json_string(kv.first) + ":" + json_string(kv.second);
    }
    return out + "}}\n";
}

namespace detail {

using Clock = std::chrono::steady_clock;

inline int ms_left(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return static_cast<int>(std::max<long long>(left.count(), 0));
}

// Pings systemd's watchdog directly; false when there is no NOTIFY_SOCKET.
inline bool notify_watchdog(const std::string &status, const std::string &reason) {
    const char *env = std::getenv("NOTIFY_SOCKET");
    if (!env || !*env) return false;
    std::string path = env;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) return false;
    std::memcpy(addr.sun_path, path.data(), path.size());
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size());
    if (path[0] == '@') addr.sun_path[0] = '\0';
    else len += 1;
    std::string state = "WATCHDOG=1";
    if (status == "degraded") {
        std::string r = reason;
        std::replace(r.begin(), r.end(), '\n', ' ');
        state += "\nSTATUS=degraded: " + r;
    }
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return false;
    ssize_t n = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                         reinterpret_cast<sockaddr *>(&addr), len);
    ::close(fd);
    return n == static_cast<ssize_t>(state.size());
}

}  // namespace detail

class Client {
  public:
    explicit Client(std::string service = "", std::string socket_path = "") {
        if (service.empty()) {
            const char *env = std::getenv("KRILL_SERVICE");
            if (!env) throw KrillError("no service name given and KRILL_SERVICE is not set");
            service = env;
        }
        if (socket_path.empty()) {
            const char *env = std::getenv("KRILL_SOCKET");
            socket_path = env ? env : "/tmp/krill.sock";
        }
        service_ = service;
        path_ = socket_path;
        if (path_.size() >= sizeof(sockaddr_un{}.sun_path))
            throw KrillError("socket path too long: " + path_);
        std::string err;
        if (!connect_now(err)) {
            const char *n = std::getenv("NOTIFY_SOCKET");
            if (!n || !*n) throw KrillError("cannot connect to " + path_ + ": " + err);
            failed();
        }
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    ~Client() { drop(); }

    void heartbeat() { send("healthy", {}); }
    void report_healthy() { send("healthy", {}); }
    void report_degraded(const std::string &reason) { send("degraded", {{"reason", reason}}); }
    void heartbeat_with_metadata(const std::map<std::string, std::string> &m) { send("healthy", m); }

    /// Closes the connection; later calls throw KrillError.
    void close() {
        std::lock_guard<std::mutex> g(mu_);
        closed_ = true;
        drop();
    }

  private:
    bool connect_now(std::string &err) {
        int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0) {
            err = std::strerror(errno);
            return false;
        }
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        // Non-blocking: a full backlog is an error (EAGAIN), never a wait.
        if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
            err = std::strerror(errno);
            ::close(fd);
            return false;
        }
        fd_ = fd;
        backoff_ms_ = BACKOFF_MIN_MS;
        retry_at_ = detail::Clock::time_point{};
        return true;
    }

    void drop() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    void failed() {
        retry_at_ = detail::Clock::now() + std::chrono::milliseconds(backoff_ms_);
        backoff_ms_ = std::min(backoff_ms_ * 2, BACKOFF_MAX_MS);
    }

    // Writes the whole line by the deadline, or fails (the caller drops the socket).
    bool write_all(const std::string &msg, detail::Clock::time_point deadline, std::string &err) {
        const char *p = msg.data();
        size_t left = msg.size();
        while (left > 0) {
            ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
            if (n >= 0) {
                p += n;
                left -= static_cast<size_t>(n);
                continue;
            }
            if (errno == EINTR) continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                err = std::strerror(errno);
                return false;
            }
            pollfd pfd{fd_, POLLOUT, 0};
            int ms = detail::ms_left(deadline);
            if (ms == 0 || ::poll(&pfd, 1, ms) <= 0) {
                err = "send timed out";
                return false;
            }
        }
        return true;
    }

    void send(const std::string &status, const std::map<std::string, std::string> &m) {
        const std::string msg = encode(service_, status, m);
        const auto deadline =
            detail::Clock::now() + std::chrono::milliseconds(SEND_TIMEOUT_MS);
        std::string why = "not connected";
        {
            std::lock_guard<std::mutex> g(mu_);
            if (closed_) throw KrillError("cannot send to " + path_ + ": the client is closed");
            if (fd_ < 0 && detail::Clock::now() >= retry_at_) {
                std::string err;
                if (!connect_now(err)) {
                    failed();
                    why = "cannot connect: " + err;
                }
            }
            if (fd_ >= 0) {
                std::string err;
                if (write_all(msg, deadline, err)) return;
                // A torn line must not begin the next connection: drop it whole.
                drop();
                failed();
                why = "cannot send: " + err;
            }
        }
        auto r = m.find("reason");
        if (detail::notify_watchdog(status, r == m.end() ? "" : r->second)) return;
        throw KrillError("cannot send to " + path_ + " (" + why + "); a later call reconnects");
    }

    std::string service_, path_;
    std::mutex mu_;
    int fd_ = -1;
    bool closed_ = false;
    int backoff_ms_ = BACKOFF_MIN_MS;
    detail::Clock::time_point retry_at_{};
};

/// The name the other SDKs use.
using KrillClient = Client;

}  // namespace krill
