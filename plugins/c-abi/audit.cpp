// audit: a C++ plugin over switchboard.hpp: a class for the state, lambdas for callbacks.
// Build: g++ -std=c++17 -shared -fPIC -O2 -I plugin-api/include plugins/c-abi/audit.cpp -o libaudit.so
#include <atomic>
#include <string>

#include "switchboard.hpp"

struct Audit {
    std::string prefix;
    std::atomic<int64_t> seen{0};
    explicit Audit(std::string p) : prefix(std::move(p)) {}
    Audit(Audit &&other) noexcept : prefix(std::move(other.prefix)), seen(other.seen.load()) {}
};

using switchboard::Call;
using switchboard::Result;

SWITCHBOARD_CPP_PLUGIN(
    Audit, "audit", "0.1.0",
    [](const switchboard::Config &config) { return Audit(config.string("prefix", "audit")); },
    switchboard::on<Audit>("user_joined", "record", {{"name", "string"}, {"email", "string"}},
                           [](Audit &audit, const Call &call) -> Result {
                               audit.seen++;
                               return audit.prefix + ": " + call.string("name") + " <" +
                                      call.string("email") + "> (from C++)";
                           }),
    switchboard::on<Audit>("audit_count", "count", {},
                           [](Audit &audit, const Call &) -> Result {
                               return static_cast<int64_t>(audit.seen.load());
                           }))
