// Heartbeat call latency of the C++ SDK, and of a raw send of the same bytes (the
// floor), on a connected socket: `bench SOCKET N`. Prints `name p50_ns p99_ns` per
// client. Built and run by `cargo bench -p krill-e2e --bench sdk`.
#include "krill.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

static void measure(const char *name, int n, const std::function<void()> &call) {
    using C = std::chrono::steady_clock;
    for (int i = 0; i < n / 10; i++) call();
    std::vector<long long> s(static_cast<size_t>(n));
    for (auto &x : s) {
        auto t0 = C::now();
        call();
        x = std::chrono::duration_cast<std::chrono::nanoseconds>(C::now() - t0).count();
    }
    std::sort(s.begin(), s.end());
    std::printf("%s %lld %lld\n", name, s[s.size() / 2], s[s.size() * 99 / 100]);
    std::fflush(stdout);
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    const std::string path = argv[1];
    const int n = std::atoi(argv[2]);
    ::unsetenv("NOTIFY_SOCKET");
    krill::Client c("bench", path);
    int raw = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::memcpy(a.sun_path, path.c_str(), path.size() + 1);
    if (::connect(raw, reinterpret_cast<sockaddr *>(&a), sizeof a) < 0) return 1;
    const std::string line = krill::encode("bench", "healthy", {});
    measure("cpp", n, [&] { c.heartbeat(); });
    measure("cpp-floor", n, [&] {
        if (::send(raw, line.data(), line.size(), MSG_NOSIGNAL) < 0) std::abort();
    });
}
