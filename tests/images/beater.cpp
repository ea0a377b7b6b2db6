// A heartbeat service on krill's C++ SDK, built static so that it runs in every test
// container and as the one program of the e2e tests' docker image (see
// `docker_services_run_in_a_real_engine` in tests/tests/execute_types.rs).
#include "krill.hpp"

#include <csignal>
#include <cstdio>
#include <string>
#include <unistd.h>

static volatile std::sig_atomic_t stopping = 0;

int main() {
    const char *env = std::getenv("KRILL_SERVICE");
    const std::string name = env ? env : "";
    // PID 1 of a container ignores signals it has no handler for: `stubborn` keeps
    // it that way, so that only docker stop's SIGKILL after the timeout ends it.
    const bool stubborn = name == "stubborn";
    if (!stubborn) std::signal(SIGTERM, [](int) { stopping = 1; });
    // `stubborn` connects where upstream's SDKs do by default; the others where
    // KRILL_SOCKET says.
    krill::Client client(name, stubborn ? "/tmp/krill.sock" : "");
    std::printf("%s beating as pid %d of its container\n", name.c_str(), getpid());
    std::fflush(stdout);
    const std::string stop = "/run/stop-" + name;
    while (!stopping) {
        // Silenced while /run/stop-NAME exists (the e2e tests' switch).
        if (access(stop.c_str(), F_OK) != 0) {
            try {
                client.heartbeat();
            } catch (const krill::KrillError &e) {
                std::fprintf(stderr, "%s\n", e.what());
            }
        }
        usleep(200 * 1000);
    }
    std::printf("%s stopping on SIGTERM\n", name.c_str());
    return 0;
}
