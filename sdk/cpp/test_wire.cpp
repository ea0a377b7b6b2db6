// Prints what krill.hpp encodes; tests/tests/sdk.rs compares it with the upstream bytes.
#include "krill.hpp"
#include <iostream>

int main() {
    std::cout << krill::encode("S", "healthy", {});
    std::cout << krill::encode("S", "degraded", {{"reason", "low \"battery\""}});
    std::cout << krill::encode("S", "healthy", {{"fps", "30"}});
    try {
        krill::Client c("S", "/nonexistent/k.sock");
    } catch (const krill::KrillError &e) {
        std::cout << e.what() << "\n";
    }
}
