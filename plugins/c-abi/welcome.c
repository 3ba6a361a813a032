/* welcome: a C-ABI switchboard plugin with config and two callbacks.
   Build: gcc -shared -fPIC -O2 -I plugin-api/include plugins/c-abi/welcome.c -o libwelcome.so */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include "switchboard.h"

typedef struct { char greeting[64]; char text[256]; atomic_long joined; } welcome;

static int32_t on_init(const sb_host *host, const sb_value *config, void **state, sb_reply *reply) {
    const sb_value *greeting = sb_map_get(config, "greeting");
    welcome *w = calloc(1, sizeof *w);
    if (!w) return sb_fail(reply, "out of memory", NULL);
    if (greeting && greeting->kind != SB_STRING) return sb_fail(reply, "`greeting` must be a string", "greeting = \"Hello\"");
    snprintf(w->greeting, sizeof w->greeting, "%.*s", greeting ? (int)greeting->as.string.len : 5, greeting ? greeting->as.string.ptr : "Hello");
    host->callback_log(host, SB_LOG_INFO, sb_cstr("welcome is ready"));
    *state = w;
    return SB_OK;
}

static void release_text(void *data) { free(data); }

static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    welcome *w = state;
    (void)host;
    if (call->callback == 0) { /* user_joined -> greet: reads name */
        const sb_value *name = sb_arg_of(call, "name");
        char *text = malloc(256);
        if (!text) return sb_fail(reply, "out of memory", NULL);
        int n = snprintf(text, 256, "%s, %.*s! (from C)", w->greeting, (int)name->as.string.len, name->as.string.ptr);
        atomic_fetch_add(&w->joined, 1);
        reply->value = sb_string((sb_str){text, n < 256 ? (size_t)n : 255});
        reply->release = release_text; /* the host copies the text, then frees it here */
        reply->release_data = text;
        return SB_OK;
    }
    reply->value = sb_int(atomic_load(&w->joined)); /* greetings_count -> count */
    return SB_OK;
}

static int32_t on_shutdown(void *state, const sb_host *host, sb_reply *reply) {
    (void)host; (void)reply;
    free(state);
    return SB_OK;
}

static const sb_arg greet_reads[] = {{"name", "string"}};
static const sb_callback callbacks[] = {
    {"user_joined", "greet", 5, SB_CALLBACK_TYPED, greet_reads, 1},
    {"greetings_count", "count", 0, SB_CALLBACK_TYPED, NULL, 0},
};
static const sb_plugin plugin = {
    sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, "welcome", "0.1.0",
    callbacks, 2, sizeof(sb_callback), NULL, 0, on_init, on_call, NULL, on_shutdown,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
