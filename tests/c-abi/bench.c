/* bench: the reference workload of the benchmarks as a C-ABI plugin, the twin of the Rust
 * `bench` fixture: on `user_joined` it reads `name` and `email` and adds their lengths to a
 * counter (a relaxed load and store, or with `rmw = true` a fetch_add); `bench_total`
 * answers the counter; `user_lookup` answers the email's length when `answers = true`. */
#include <stdatomic.h>
#include <stdlib.h>
#include "switchboard.h"

typedef struct { atomic_llong total; int rmw; int answers; } bench;

static int flag(const sb_value *config, const char *key) {
    const sb_value *v = sb_map_get(config, key);
    return v && v->kind == SB_BOOL && v->as.boolean;
}

static int32_t on_init(const sb_host *host, const sb_value *config, void **state, sb_reply *reply) {
    (void)host;
    bench *b = calloc(1, sizeof *b);
    if (!b) return sb_fail(reply, "out of memory", NULL);
    b->rmw = flag(config, "rmw");
    b->answers = flag(config, "answers");
    *state = b;
    return SB_OK;
}

static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    bench *b = state;
    (void)host;
    switch (call->callback) {
    case 0: { /* user_joined -> count: a typed callback's values follow its reads */
        long long n = (long long)(call->values[0].as.string.len + call->values[1].as.string.len);
        if (b->rmw) {
            atomic_fetch_add_explicit(&b->total, n, memory_order_relaxed);
        } else {
            long long now = atomic_load_explicit(&b->total, memory_order_relaxed);
            atomic_store_explicit(&b->total, now + n, memory_order_relaxed);
        }
        return SB_OK;
    }
    case 1: /* user_lookup -> lookup */
        if (b->answers) reply->value = sb_int((int64_t)call->values[0].as.string.len);
        return SB_OK;
    default: /* bench_total -> total */
        reply->value = sb_int(atomic_load(&b->total));
        return SB_OK;
    }
}

static int32_t on_shutdown(void *state, const sb_host *host, sb_reply *reply) {
    (void)host; (void)reply;
    free(state);
    return SB_OK;
}

static const sb_arg joined[] = {{"name", "string"}, {"email", "string"}};
static const sb_arg lookup[] = {{"email", "string"}};
static const sb_callback callbacks[] = {
    {"user_joined", "count", 0, SB_CALLBACK_TYPED, joined, 2},
    {"user_lookup", "lookup", 0, SB_CALLBACK_TYPED, lookup, 1},
    {"bench_total", "total", 0, SB_CALLBACK_TYPED, NULL, 0},
};
static const sb_plugin plugin = {
    sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, "cbench", "0.1.0",
    callbacks, 3, sizeof(sb_callback), NULL, 0, on_init, on_call, NULL, on_shutdown,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
