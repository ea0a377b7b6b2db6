// Krill heartbeat client, header-only C++17, wire-compatible with the upstream Krill
// C++ SDK: one compact JSON object per line (type, service, status, metadata).
//
//   krill::Client client;                 // KRILL_SERVICE / KRILL_SOCKET, set by krill
//   krill::Client client("my-service");   // socket: KRILL_SOCKET or /tmp/krill.sock
//   client.heartbeat();
//   client.report_degraded("low battery");
#pragma once

#include <cstdlib>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace krill {

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
        fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd_ < 0) throw KrillError("socket: " + std::string(std::strerror(errno)));
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        if (path_.size() >= sizeof addr.sun_path) throw KrillError("socket path too long: " + path_);
        std::memcpy(addr.sun_path, path_.c_str(), path_.size() + 1);
        if (::connect(fd_, reinterpret_cast<sockaddr *>(&addr), sizeof addr) < 0) {
            std::string err = std::strerror(errno);
            ::close(fd_);
            throw KrillError("cannot connect to " + path_ + ": " + err);
        }
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;
    ~Client() { ::close(fd_); }

    void heartbeat() { send("healthy", {}); }
    void report_healthy() { send("healthy", {}); }
    void report_degraded(const std::string &reason) { send("degraded", {{"reason", reason}}); }
    void heartbeat_with_metadata(const std::map<std::string, std::string> &m) { send("healthy", m); }

  private:
    void send(const std::string &status, const std::map<std::string, std::string> &m) {
        std::string msg = encode(service_, status, m);
        const char *p = msg.data();
        size_t left = msg.size();
        while (left > 0) {
            ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EINTR) continue;
                throw KrillError("cannot send to " + path_ + ": " + std::strerror(errno));
            }
            p += n;
            left -= static_cast<size_t>(n);
        }
    }
    std::string service_, path_;
    int fd_ = -1;
};

} // namespace krill
