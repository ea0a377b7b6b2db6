// The C++ client never harms its process: bounded calls, reconnect, the systemd
// watchdog fallback, no SIGPIPE (its default action restored), thread safety. Real
// sockets; run by tests/tests/sdk.rs. Prints "ok NAME" per check, exits 1 on failure.
#include "krill.hpp"

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <sys/stat.h>

namespace {

#define CHECK(cond)                                                                     \
    do {                                                                                \
        if (!(cond)) {                                                                  \
            std::cerr << "FAILED line " << __LINE__ << ": " #cond << std::endl;         \
            std::exit(1);                                                               \
        }                                                                               \
    } while (0)

using Clock = std::chrono::steady_clock;

// A listening socket; `accept_one` returns a connection's fd.
struct Listener {
    std::string path;
    int fd;
    explicit Listener(const std::string &p) : path(p) {
        ::unlink(p.c_str());
        fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, p.c_str());
        CHECK(::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        CHECK(::listen(fd, 16) == 0);
    }
    int accept_one() { return ::accept(fd, nullptr, nullptr); }
    ~Listener() {
        ::close(fd);
        ::unlink(path.c_str());
    }
};

std::string read_some(int fd) {
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

}  // namespace

int main() {
    std::signal(SIGPIPE, SIG_DFL);  // a SIGPIPE would kill this test
    ::unsetenv("NOTIFY_SOCKET");
    char tmpl[] = "/tmp/krill-cpp-XXXXXX";
    const std::string dir = ::mkdtemp(tmpl);
    const std::string path = dir + "/k.sock";

    {  // reconnect after the server vanished, with a clear error meanwhile
        auto *l = new Listener(path);
        krill::Client c("svc", path);
        int conn = l->accept_one();
        c.heartbeat();
        CHECK(read_some(conn).find("\"service\":\"svc\"") != std::string::npos);
        ::close(conn);
        delete l;
        bool threw = false;
        for (int i = 0; i < 3 && !threw; i++) {
            try {
                c.heartbeat();
            } catch (const krill::KrillError &e) {
                threw = std::string(e.what()).find("a later call reconnects") != std::string::npos;
            }
        }
        CHECK(threw);
        Listener again(path);
        auto deadline = Clock::now() + std::chrono::seconds(5);
        bool delivered = false;
        std::thread server([&] {
            int s = again.accept_one();
            delivered = read_some(s).find("heartbeat") != std::string::npos;
            ::close(s);
        });
        while (!delivered && Clock::now() < deadline) {
            try {
                c.heartbeat();
            } catch (const krill::KrillError &) {
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            if (delivered) break;
        }
        server.join();
        CHECK(delivered);
        std::cout << "ok reconnect" << std::endl;
    }

    {  // bounded: a server that never reads
        Listener l(path);
        krill::Client c("svc", path);
        int conn = l.accept_one();
        std::map<std::string, std::string> big{{"k", std::string(60000, 'x')}};
        long worst_ms = 0;
        bool threw = false;
        for (int i = 0; i < 100; i++) {
            auto t0 = Clock::now();
            try {
                c.heartbeat_with_metadata(big);
            } catch (const krill::KrillError &) {
                threw = true;
            }
            worst_ms = std::max<long>(worst_ms, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    Clock::now() - t0)
                                                    .count());
        }
        CHECK(threw);
        CHECK(worst_ms < krill::SEND_TIMEOUT_MS + 200);
        ::close(conn);
        std::cout << "ok bounded " << worst_ms << " ms" << std::endl;
    }

    {  // threads never tear a line
        Listener l(path);
        krill::Client c("svc", path);
        int conn = l.accept_one();
        std::string got;
        std::atomic<bool> done{false};
        std::thread reader([&] {
            for (;;) {
                std::string s = read_some(conn);
                if (s.empty()) break;
                got += s;
            }
            done = true;
        });
        std::map<std::string, std::string> meta{{"blob", std::string(3000, 'y')}};
        std::vector<std::thread> ts;
        for (int t = 0; t < 8; t++)
            ts.emplace_back([&] {
                for (int i = 0; i < 50; i++) c.heartbeat_with_metadata(meta);
            });
        for (auto &t : ts) t.join();
        c.close();
        reader.join();
        const std::string line = krill::encode("svc", "healthy", meta);
        size_t count = 0;
        for (size_t pos = 0; pos < got.size(); pos += line.size()) {
            CHECK(got.compare(pos, line.size(), line) == 0);
            count++;
        }
        CHECK(count == 400);
        std::cout << "ok threads" << std::endl;
    }

    {  // the systemd watchdog fallback
        const std::string notify = dir + "/notify";
        int n = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strcpy(a.sun_path, notify.c_str());
        CHECK(::bind(n, reinterpret_cast<sockaddr *>(&a), sizeof a) == 0);
        ::setenv("NOTIFY_SOCKET", notify.c_str(), 1);
        krill::Client c("svc", dir + "/absent.sock");
        c.heartbeat();
        c.report_degraded("low battery");
        ::unsetenv("NOTIFY_SOCKET");
        CHECK(read_some(n) == "WATCHDOG=1");
        CHECK(read_some(n) == "WATCHDOG=1\nSTATUS=degraded: low battery");
        ::close(n);
        ::unlink(notify.c_str());
        std::cout << "ok fallback" << std::endl;
    }
    ::rmdir(dir.c_str());
    return 0;
}
