// A service run by krill with `health_check: {type: heartbeat, timeout: 2s}`: it
// needs no configuration (KRILL_SERVICE and KRILL_SOCKET come from its unit).
#include <krill.hpp>

#include <chrono>
#include <iostream>
#include <thread>

int main(int argc, char **argv) {
    const int beats = argc > 1 ? std::atoi(argv[1]) : -1;  // -1: forever
    krill::KrillClient client;
    for (int i = 0; beats < 0 || i < beats; i++) {
        try {
            client.heartbeat();
        } catch (const krill::KrillError &e) {
            // Disconnected with no systemd watchdog to fall back to: keep working,
            // a later heartbeat reconnects.
            std::cerr << e.what() << std::endl;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    std::cout << "sent " << beats << " heartbeats" << std::endl;
}
