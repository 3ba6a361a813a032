/* The static table and C hooks of the Go plugin `ledger`; the work is in ledger.go. */
#include "switchboard.h"
#include "_cgo_export.h"

static void release(void *data) { goRelease(data); }

static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    (void)state; (void)host;
    if (call->callback == 0) {
        const sb_value *name = sb_arg_of(call, "name");
        const sb_value *email = sb_arg_of(call, "email");
        sb_str line;
        goRecord(name->as.string, email->as.string, &line);
        reply->value = sb_string(line);
        reply->release = release;
        reply->release_data = (void *)line.ptr;
        return SB_OK;
    }
    reply->value = sb_int(goCount());
    return SB_OK;
}

static const sb_arg record_reads[] = {{"name", "string"}, {"email", "string"}};
static const sb_callback callbacks[] = {
    {"user_joined", "record", -5, SB_CALLBACK_TYPED, record_reads, 2},
    {"ledger_count", "count", 0, SB_CALLBACK_TYPED, NULL, 0},
};
static const sb_plugin plugin = {
    sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, "ledger", "0.1.0",
    callbacks, 2, sizeof(sb_callback), NULL, 0, NULL, on_call, NULL, NULL,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
