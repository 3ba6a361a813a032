/* hostile: a C-ABI plugin that breaks the rules on purpose, for the host's refusals.
 *
 * Built several times with -D flags, each a table the host must refuse or accept:
 *   TABLE_MAJOR=N, TABLE_MINOR=N  the ABI version the table claims (default 1.0)
 *   SHORT_TABLE                   struct_size smaller than a 1.0 table
 *   DUP_NAME                      two callbacks named alike
 *   BAD_TYPE                      a callback reading an argument of a type that does not exist
 *   NO_ON_CALL                    no on_call hook
 *   READ_UNDECLARED               a callback reading `nick`, which `misbehave` does not declare
 *
 * At run time `misbehave` (what: string) answers as `what` says: "bad_utf8", "bad_status",
 * "null_string", "bad_kind", "bad_bool", "pending", "deep", "dup_key", "fail",
 * "fail_silent", "emit" (emits `ok`, checks that its host still names it and logs a warning
 * through it, and answers how many outcomes came back), "event_id"
 * (answers the call's event id), "dirty" (answers nothing but leaves the reply's error, help,
 * payload and release_data written), "zeroed" (answers "zeroed" if its reply came zeroed,
 * struct_size aside, and fails otherwise); or, as a plugin misbehaves beyond its answers:
 * "segfault" (writes to address 0), "abort", "hang" (never returns), "quit" (exit(0)), "hog"
 * (allocates and fills 1 GiB, or fails saying malloc failed), "shout" (prints half a JSON
 * object to standard output, then the rest), "fork" (starts `sleep 300` in a child process
 * it does not wait for, and answers its pid); or "fine";
 * `ok` answers "ok"; `releases` answers how many replies the host has released.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "switchboard.h"

#ifndef TABLE_MAJOR
#define TABLE_MAJOR SB_ABI_MAJOR
#endif
#ifndef TABLE_MINOR
#define TABLE_MINOR SB_ABI_MINOR
#endif

static atomic_long released;
static void count_release(void *data) { (void)data; atomic_fetch_add(&released, 1); }

static sb_value deep_list[100];

static int32_t on_init(const sb_host *host, const sb_value *config, void **state, sb_reply *reply) {
    (void)host; (void)config; (void)reply;
    for (int i = 1; i < 100; i++) {
        deep_list[i].kind = SB_LIST;
        deep_list[i].as.list.items = &deep_list[i - 1];
        deep_list[i].as.list.len = 1;
    }
    *state = NULL;
    return SB_OK;
}

static const char bad_text[] = {'o', 'k', (char)0xff, (char)0xfe, 0};
static const sb_entry dup_entries[] = {{{"k", 1}, {SB_NULL, 0, {0}}}, {{"k", 1}, {SB_NULL, 0, {0}}}};

#ifdef NO_ON_CALL
__attribute__((unused))
#endif
static int32_t on_call(void *state, const sb_call *call, const sb_host *host, sb_reply *reply) {
    (void)state;
    const sb_value *first = call->callback == 0 ? sb_arg_of(call, "what") : NULL;
    if (first && first->kind == SB_STRING && sb_str_eq(first->as.string, "zeroed")) {
        const unsigned char *bytes = (const unsigned char *)reply;
        for (size_t i = sizeof reply->struct_size; i < sizeof *reply; i++) {
            if (bytes[i] != 0) return sb_fail(reply, "the reply was not zeroed", NULL);
        }
        if (reply->struct_size != sizeof *reply) return sb_fail(reply, "the reply's struct_size is wrong", NULL);
        reply->value = sb_string(sb_cstr("zeroed"));
        return SB_OK;
    }
    if (first && first->kind == SB_STRING && sb_str_eq(first->as.string, "dirty")) {
        /* Answers nothing, but leaves the reply's other fields written. */
        reply->error = "stale error";
        reply->help = "stale help";
        reply->value.as.integer = 42;
        reply->release_data = reply;
        return SB_OK;
    }
    reply->release = count_release;
    if (call->callback == 1) { /* ok */
        reply->value = sb_string(sb_cstr("ok"));
        return SB_OK;
    }
    if (call->callback == 2) { /* releases */
        reply->release = NULL;
        reply->value = sb_int(atomic_load(&released));
        return SB_OK;
    }
    const sb_value *what = sb_arg_of(call, "what");
    if (!what || what->kind != SB_STRING) return sb_fail(reply, "no `what`", NULL);
    sb_str w = what->as.string;
    if (sb_str_eq(w, "bad_utf8")) { reply->value = sb_string(sb_cstr(bad_text)); return SB_OK; }
    if (sb_str_eq(w, "bad_status")) return 7;
    if (sb_str_eq(w, "null_string")) { reply->value.kind = SB_STRING; reply->value.as.string.ptr = NULL; reply->value.as.string.len = 5; return SB_OK; }
    if (sb_str_eq(w, "bad_kind")) { reply->value.kind = 99; return SB_OK; }
    if (sb_str_eq(w, "bad_bool")) { reply->value.kind = SB_BOOL; reply->value.as.integer = 3; return SB_OK; }
    if (sb_str_eq(w, "pending")) return SB_PENDING;
    if (sb_str_eq(w, "deep")) { reply->value = deep_list[99]; return SB_OK; }
    if (sb_str_eq(w, "dup_key")) { reply->value.kind = SB_MAP; reply->value.as.map.entries = dup_entries; reply->value.as.map.len = 2; return SB_OK; }
    if (sb_str_eq(w, "fail")) return sb_fail(reply, "hostile fails on purpose", "do not ask it to");
    if (sb_str_eq(w, "fail_silent")) return SB_ERROR;
    if (sb_str_eq(w, "event_id")) { reply->value = sb_string(call->event_id); return SB_OK; }
    if (sb_str_eq(w, "segfault")) {
        /* A real invalid write: raise(SIGSEGV) would not do, since a Rust process's
         * handler (for stack overflows) returns from a signal that no fault caused. The
         * address is read from a volatile so that the compiler cannot turn the store
         * into a trap instruction. */
        volatile intptr_t nowhere = 0;
        *(volatile int *)nowhere = 1;
        return SB_OK;
    }
    if (sb_str_eq(w, "abort")) abort();
    if (sb_str_eq(w, "hang")) for (;;) pause();
    if (sb_str_eq(w, "quit")) exit(0);
    if (sb_str_eq(w, "hog")) {
        size_t size = (size_t)1 << 30;
        char *memory = malloc(size);
        if (!memory) return sb_fail(reply, "malloc of 1024 MB failed", NULL);
        memset(memory, 1, size);
        reply->value = sb_int(memory[size - 1]);
        free(memory);
        return SB_OK;
    }
    if (sb_str_eq(w, "shout")) {
        printf("{\"half\": ");
        fflush(stdout);
        printf("\"shouted by C\"}\n");
        fflush(stdout);
        reply->value = sb_string(sb_cstr("shouted"));
        return SB_OK;
    }
    if (sb_str_eq(w, "fork")) {
        pid_t child = fork();
        if (child == 0) {
            execlp("sleep", "sleep", "300", (char *)NULL);
            _exit(127);
        }
        if (child < 0) return sb_fail(reply, "fork failed", NULL);
        reply->value = sb_int((int64_t)child);
        return SB_OK;
    }
    if (sb_str_eq(w, "emit")) {
        sb_outcomes outcomes;
        int32_t code = host->callback_emit(host, sb_cstr("ok"), NULL, 0, &outcomes);
        size_t count = outcomes.count;
        int same = count > 0 && outcomes.items[0].status == SB_OK && sb_str_eq(outcomes.items[0].value.as.string, "ok");
        host->callback_outcomes_free(host, &outcomes);
        /* The borrowed host still stands for this hook after the nested emit's own calls. */
        sb_str name = host->callback_plugin_name(host);
        if (!sb_str_eq(name, "hostile")) return sb_fail(reply, "after the nested emit the host names another plugin", NULL);
        host->callback_log(host, SB_LOG_WARN, sb_cstr("still hostile after the nested emit"));
        if (code != SB_OK || !same) return sb_fail(reply, "the nested emit did not answer `ok`", NULL);
        reply->value = sb_int((int64_t)count);
        return SB_OK;
    }
    reply->value = sb_string(sb_cstr("fine"));
    return SB_OK;
}

static const sb_arg misbehave_reads[] = {{"what", "string"}};
#ifdef BAD_TYPE
static const sb_arg ok_reads[] = {{"what", "strng"}};
#define OK_FLAGS SB_CALLBACK_TYPED
#define OK_COUNT 1
#elif defined(READ_UNDECLARED)
static const sb_arg ok_reads[] = {{"nick", "string"}};
#define OK_FLAGS SB_CALLBACK_TYPED
#define OK_COUNT 1
#else
#define ok_reads NULL
#define OK_FLAGS 0
#define OK_COUNT 0
#endif
#ifdef DUP_NAME
#define OK_NAME "misbehave"
#else
#define OK_NAME "ok"
#endif

static const sb_callback callbacks[] = {
    {"misbehave", "misbehave", 0, SB_CALLBACK_TYPED, misbehave_reads, 1},
#ifdef READ_UNDECLARED
    {"misbehave", OK_NAME, 0, OK_FLAGS, ok_reads, OK_COUNT},
#else
    {"ok", OK_NAME, 0, OK_FLAGS, ok_reads, OK_COUNT},
#endif
    {"releases", "releases", 0, 0, NULL, 0},
};

static const sb_plugin plugin = {
#ifdef SHORT_TABLE
    16,
#else
    sizeof(sb_plugin),
#endif
    TABLE_MAJOR, TABLE_MINOR, "hostile", "0.1.0",
    callbacks, 3, sizeof(sb_callback), NULL, 0, on_init,
#ifdef NO_ON_CALL
    NULL,
#else
    on_call,
#endif
    NULL, NULL,
};

SB_EXPORT const sb_plugin *switchboard_plugin(void) { return &plugin; }
