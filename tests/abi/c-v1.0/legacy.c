/* legacy: a C-ABI plugin built against the frozen 1.0 header beside it, using every
 * service of the interface: config, a typed and a by-name callback, a nested emit, an
 * error with help, logs, a kept handle used and released, a control operation, shutdown. */
#include <string.h>
#include "switchboard.h"

static char label[64] = "legacy";

static int32_t on_init(const sb_host *host, const sb_value *config, void **state, sb_reply *reply) {
    const sb_value *given = sb_map_get(config, "label");
    (void)reply;
    if (given && given->kind == SB_STRING && given->as.string.len < sizeof label) {
        memcpy(label, given->as.string.ptr, given->as.string.len);
        label[given->as.string.len] = 0;
    }
    host->callback_log(host, SB_LOG_INFO, sb_cstr("legacy ready"));
    *state = label;
    return SB_OK;
}

static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    switch (call->callback) {
    case 0: /* ping: by name */
        reply->value = sb_string(sb_cstr((const char *)state));
        return SB_OK;
    case 1: { /* echo: typed, reads name */
        const sb_value *name = sb_arg_of(call, "name");
        reply->value = *name; /* borrowed from the host for this call: copied before it returns */
        return SB_OK;
    }
    case 2: { /* nest: emits ping, answers how many callbacks answered */
        sb_outcomes outcomes;
        if (host->callback_emit(host, sb_cstr("ping"), NULL, 0, &outcomes) != SB_OK) {
            host->callback_outcomes_free(host, &outcomes);
            return sb_fail(reply, "the nested emit failed", NULL);
        }
        reply->value = sb_int((int64_t)outcomes.count);
        host->callback_outcomes_free(host, &outcomes);
        return SB_OK;
    }
    case 3: { /* keep: a kept handle, used and released */
        const sb_host *kept = host->callback_keep(host);
        if (!kept) return sb_fail(reply, "no kept handle", NULL);
        kept->callback_log(kept, SB_LOG_INFO, sb_cstr("from a kept handle"));
        reply->value = sb_int(kept->callback_has_feature(kept, sb_cstr("owned_host")) + host->callback_manifest_dir(host).len > 0);
        kept->callback_release(kept);
        return SB_OK;
    }
    default: /* fail */
        return sb_fail(reply, "legacy fails on purpose", "ask something else");
    }
}

static int32_t on_control(void *state, sb_str operation, const sb_value *argument, const sb_host *host, sb_reply *reply) {
    (void)argument; (void)host;
    if (!sb_str_eq(operation, "label")) return sb_fail(reply, "unknown operation", NULL);
    reply->value = sb_string(sb_cstr((const char *)state));
    return SB_OK;
}

static int32_t on_shutdown(void *state, const sb_host *host, sb_reply *reply) {
    (void)state; (void)reply;
    host->callback_log(host, SB_LOG_INFO, sb_cstr("legacy shut down"));
    return SB_OK;
}

static const sb_arg echo_reads[] = {{"name", "string"}, {"age", "int?"}};
static const sb_arg emitted_args[] = {{"n", "int"}};
static const sb_emit emits[] = {{"cycle", emitted_args, 1}};
static const sb_callback callbacks[] = {
    {"ping", "ping", 0, 0, NULL, 0},
    {"echo", "echo", 3, SB_CALLBACK_TYPED, echo_reads, 2},
    {"nest", "nest", 0, 0, NULL, 0},
    {"config", "keep", 0, 0, NULL, 0},
    {"fail", "fail", 0, 0, NULL, 0},
};
static const sb_plugin plugin = {
    sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, "legacy", "1.0.0",
    callbacks, 5, sizeof(sb_callback), emits, 1, on_init, on_call, on_control, on_shutdown,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
