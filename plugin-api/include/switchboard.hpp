// switchboard.hpp: a small header-only C++17 layer over switchboard.h (the C ABI, which
// stays the only contract): callbacks as lambdas, state as a class, results as
// std::string / int64_t / double / bool, errors as exceptions caught at the boundary.
//
//   struct Audit { std::string prefix; };
//   SWITCHBOARD_CPP_PLUGIN(Audit, "audit", "0.1.0",
//       [](const switchboard::Config &config) { return Audit{config.string("prefix", "audit")}; },
//       switchboard::on<Audit>("user_joined", "record", {{"name", "string"}},
//           [](Audit &audit, const switchboard::Call &call) -> switchboard::Result {
//               return audit.prefix + ": " + call.string("name");
//           }))
//
// No exception crosses into the host: a callback that throws answers SB_ERROR with the
// exception's message. The state is shared by every thread that calls: keep it safe.
#ifndef SWITCHBOARD_HPP
#define SWITCHBOARD_HPP

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "switchboard.h"

namespace switchboard {

/// An argument or config value, borrowed from the host for the call.
class View {
  public:
    explicit View(const sb_value *value) : value_(value) {}
    bool present() const { return value_ && value_->kind != SB_NULL; }
    std::string string() const {
        if (!value_ || value_->kind != SB_STRING) throw std::runtime_error("not a string");
        return std::string(value_->as.string.ptr, value_->as.string.len);
    }
    int64_t integer() const {
        if (!value_ || value_->kind != SB_INT) throw std::runtime_error("not an int");
        return value_->as.integer;
    }

  private:
    const sb_value *value_;
};

/// A plugin's config (a map).
class Config {
  public:
    explicit Config(const sb_value *map) : map_(map) {}
    /// The string at `key`, or `otherwise` when the config has none.
    std::string string(const char *key, const std::string &otherwise) const {
        View value(sb_map_get(map_, key));
        return value.present() ? value.string() : otherwise;
    }

  private:
    const sb_value *map_;
};

/// One call: its arguments by name.
class Call {
  public:
    explicit Call(const sb_call *call) : call_(call) {}
    View arg(const char *name) const { return View(sb_arg_of(call_, name)); }
    std::string string(const char *name) const { return arg(name).string(); }
    uint64_t request_id() const { return call_->request_id; }

  private:
    const sb_call *call_;
};

/// What a callback answers.
using Result = std::variant<std::monostate, std::string, int64_t, double, bool>;

/// One callback: event, name, the arguments it reads, and the code.
template <typename State> struct Callback {
    const char *event;
    const char *name;
    std::vector<sb_arg> reads;
    std::function<Result(State &, const Call &)> run;
    int32_t priority = 0;
};

template <typename State, typename F>
Callback<State> on(const char *event, const char *name, std::vector<sb_arg> reads, F run,
                   int32_t priority = 0) {
    return Callback<State>{event, name, std::move(reads), std::function<Result(State &, const Call &)>(run),
                           priority};
}

namespace detail {

/// A result the host copies, then releases.
struct Answer {
    std::string text;
};

inline void release_answer(void *answer) { delete static_cast<Answer *>(answer); }

inline int32_t answer(const Result &result, sb_reply *reply) {
    if (std::holds_alternative<std::string>(result)) {
        auto *owned = new Answer{std::get<std::string>(result)};
        sb_str text;
        text.ptr = owned->text.data();
        text.len = owned->text.size();
        reply->value = sb_string(text);
        reply->release = release_answer;
        reply->release_data = owned;
    } else if (std::holds_alternative<int64_t>(result)) {
        reply->value = sb_int(std::get<int64_t>(result));
    } else if (std::holds_alternative<double>(result)) {
        reply->value = sb_null();
        reply->value.kind = SB_FLOAT;
        reply->value.as.number = std::get<double>(result);
    } else if (std::holds_alternative<bool>(result)) {
        reply->value = sb_null();
        reply->value.kind = SB_BOOL;
        reply->value.as.boolean = std::get<bool>(result) ? 1 : 0;
    }
    return SB_OK;
}

/// An error message the host copies, then releases.
inline int32_t fail(const char *what, sb_reply *reply) {
    auto *owned = new Answer{what};
    reply->error = owned->text.c_str();
    reply->release = release_answer;
    reply->release_data = owned;
    return SB_ERROR;
}

/// The C table of a C++ plugin, built once.
template <typename State> struct Plugin {
    std::function<State(const Config &)> init;
    std::vector<Callback<State>> callbacks;
    std::vector<sb_callback> table_callbacks;
    sb_plugin table;

    static Plugin *&instance() {
        static Plugin *plugin = nullptr;
        return plugin;
    }

    static int32_t on_init(const sb_host *, const sb_value *config, void **state, sb_reply *reply) {
        try {
            *state = new State(instance()->init(Config(config)));
            return SB_OK;
        } catch (const std::exception &e) {
            return fail(e.what(), reply);
        }
    }

    static int32_t on_call(void *state, const sb_call *call, const sb_host *, sb_reply *reply) {
        try {
            auto &callbacks = instance()->callbacks;
            if (call->callback >= callbacks.size()) return fail("no such callback", reply);
            return answer(callbacks[call->callback].run(*static_cast<State *>(state), Call(call)), reply);
        } catch (const std::exception &e) {
            return fail(e.what(), reply);
        } catch (...) {
            return fail("the callback threw something that is not a std::exception", reply);
        }
    }

    static int32_t on_shutdown(void *state, const sb_host *, sb_reply *) {
        std::unique_ptr<State> owned(static_cast<State *>(state)); // freed here
        return SB_OK;
    }

    Plugin(const char *name, const char *version, std::function<State(const Config &)> init_,
           std::vector<Callback<State>> callbacks_)
        : init(std::move(init_)), callbacks(std::move(callbacks_)) {
        for (auto &callback : callbacks) {
            table_callbacks.push_back(sb_callback{callback.event, callback.name, callback.priority,
                                                  SB_CALLBACK_TYPED, callback.reads.data(),
                                                  callback.reads.size()});
        }
        table = sb_plugin{sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, name, version,
                          table_callbacks.data(), table_callbacks.size(), sizeof(sb_callback),
                          nullptr, 0, on_init, on_call, nullptr, on_shutdown};
        instance() = this;
    }
};

} // namespace detail
} // namespace switchboard

/// Defines the plugin's entry point: state type, name, version, its init (a callable
/// taking `const switchboard::Config &` and returning the state) and its callbacks.
#define SWITCHBOARD_CPP_PLUGIN(State, name, version, init, ...)                                \
    extern "C" SB_EXPORT const sb_plugin *switchboard_plugin(void) {                          \
        static switchboard::detail::Plugin<State> plugin(name, version, init,                  \
                                                         {__VA_ARGS__});                       \
        return &plugin.table;                                                                  \
    }

#endif // SWITCHBOARD_HPP
