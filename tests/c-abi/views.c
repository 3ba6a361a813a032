/* views: every way a C callback can be handed its arguments, each callback answering what
 * it was given as text ("a=Ann b=7"), so that a test can compare them: typed reads in the
 * event's order, out of it and a subset; reading by name; lists and maps (which a frame
 * does not lower); and more arguments than a frame holds. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "switchboard.h"

static void describe(char *out, size_t room, const sb_str *names, const sb_value *values,
                     size_t count) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && used < room; i++) {
        const sb_value *v = &values[i];
        char text[64];
        switch (v->kind) {
        case SB_NULL: snprintf(text, sizeof text, "null"); break;
        case SB_INT: snprintf(text, sizeof text, "%lld", (long long)v->as.integer); break;
        case SB_STRING:
            snprintf(text, sizeof text, "%.*s", (int)v->as.string.len, v->as.string.ptr);
            break;
        case SB_LIST: snprintf(text, sizeof text, "list(%zu)", v->as.list.len); break;
        case SB_MAP: snprintf(text, sizeof text, "map(%zu)", v->as.map.len); break;
        default: snprintf(text, sizeof text, "kind%u", (unsigned)v->kind); break;
        }
        used += (size_t)snprintf(out + used, room - used, "%s%.*s=%s", i ? " " : "",
                                 (int)names[i].len, names[i].ptr, text);
    }
}

static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    (void)state; (void)host;
    char *text = malloc(512);
    if (!text) return sb_fail(reply, "out of memory", NULL);
    describe(text, 512, call->names, call->values, call->count);
    reply->value = sb_string(sb_cstr(text));
    reply->release = free;
    reply->release_data = text;
    return SB_OK;
}

static const sb_arg in_order[] = {{"a", "string"}, {"b", "int?"}};
static const sb_arg reversed[] = {{"b", "int?"}, {"a", "string"}};
static const sb_arg second[] = {{"b", "int?"}};
static const sb_arg nested[] = {{"xs", "list"}, {"m", "map"}};
static const sb_arg wide[] = {{"a1", "int"}, {"a2", "int"}, {"a3", "int"}, {"a4", "int"},
                              {"a5", "int"}, {"a6", "int"}, {"a7", "int"}, {"a8", "int"},
                              {"a9", "int"}};
static const sb_callback callbacks[] = {
    {"pair", "in_order", 80, SB_CALLBACK_TYPED, in_order, 2},
    {"pair", "reversed", 70, SB_CALLBACK_TYPED, reversed, 2},
    {"pair", "second", 60, SB_CALLBACK_TYPED, second, 1},
    {"pair", "pair_by_name", 50, 0, NULL, 0},
    {"nested", "nested_typed", 80, SB_CALLBACK_TYPED, nested, 2},
    {"nested", "nested_by_name", 70, 0, NULL, 0},
    {"wide", "wide_typed", 80, SB_CALLBACK_TYPED, wide, 9},
    {"wide", "wide_by_name", 70, 0, NULL, 0},
};
static const sb_plugin plugin = {
    sizeof(sb_plugin), SB_ABI_MAJOR, SB_ABI_MINOR, "views", "0.1.0",
    callbacks, sizeof callbacks / sizeof callbacks[0], sizeof(sb_callback), NULL, 0,
    NULL, on_call, NULL, NULL,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
