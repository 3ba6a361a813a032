/*
 * switchboard.h: the C ABI of switchboard plugins, version 1.0.
 *
 * This header is the source of truth for the second plugin kind, beside the Rust SDK: a
 * shared library that exports `switchboard_plugin` (below) is a switchboard plugin,
 * whatever language built it (C, C++, Zig, Go, ...). The host reads the table that function
 * returns, checks every callback against the manifest exactly as it checks Rust plugins,
 * and calls the hooks. C99; depends on <stdint.h> and <stddef.h> only.
 *
 * Naming. Hooks the plugin implements are named `on_*`; services the host implements are
 * named `callback_*` and reached through an `sb_host`. Every pointer's owner is said where
 * it is declared: "borrowed" memory belongs to the other side and is valid only for the
 * call it was passed in (or as said); memory a plugin hands the host stays the plugin's
 * until the host calls the `release` the plugin gave with it. The host never frees plugin
 * memory with its own allocator, and a plugin never frees host memory.
 *
 * Evolution. `SB_ABI_MAJOR` changes only when a layout below changes incompatibly; a host
 * refuses a plugin of another major, naming both versions. Within a major, structs grow
 * only at their end, and each starts with its own `struct_size` (as built): a host reads
 * only the fields a plugin's `struct_size` covers, and a plugin built for a later minor
 * checks `host->abi_minor` (or `host->struct_size`) before it uses a service added after
 * 1.0. So a plugin built against 1.0 loads in every 1.x host, and a plugin built against a
 * later 1.y loads in a 1.0 host too (what the host does not know, it does not read).
 *
 * Strings are UTF-8. The host checks every string, size, count, status and nesting a
 * plugin hands it; a plugin that breaks a rule gets an error naming it, never a crash of
 * the host on its account.
 */
#ifndef SWITCHBOARD_H
#define SWITCHBOARD_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SB_ABI_MAJOR 1
#define SB_ABI_MINOR 0

/* The one exported entry point. */
#if defined(_WIN32)
#define SB_EXPORT __declspec(dllexport)
#else
#define SB_EXPORT __attribute__((visibility("default")))
#endif

/* Statuses a hook returns. Any other value is refused as a broken status. */
#define SB_OK 0      /* success; `reply->value` holds the result (SB_NULL: none) */
#define SB_ERROR 1   /* failure; `reply->error` (and optionally `reply->help`) say why */
#define SB_PENDING 2 /* reserved: the result comes later under the call's request id.
                        Hosts of ABI 1.0 answer it as an error ("not supported yet"). */

/* The kinds of a value. */
#define SB_NULL 0
#define SB_BOOL 1
#define SB_INT 2
#define SB_FLOAT 3
#define SB_STRING 4
#define SB_BYTES 5
#define SB_LIST 6
#define SB_MAP 7

/* Log levels for `callback_log`. */
#define SB_LOG_ERROR 1
#define SB_LOG_WARN 2
#define SB_LOG_INFO 3
#define SB_LOG_DEBUG 4
#define SB_LOG_TRACE 5

/* Flags of an `sb_callback`. */
#define SB_CALLBACK_TYPED 1 /* `reads` lists every argument the callback reads, with its
                               type; the host checks them against the manifest at load */

/* A string: `len` bytes of UTF-8 at `ptr`, not NUL-terminated (`ptr` may be NULL when
   `len` is 0). Who owns it is said where it is used. */
typedef struct sb_str {
    const char *ptr;
    size_t len;
} sb_str;

/* Bytes: `len` bytes at `ptr`. */
typedef struct sb_bytes {
    const uint8_t *ptr;
    size_t len;
} sb_bytes;

typedef struct sb_value sb_value;
typedef struct sb_entry sb_entry;

/* A value: an argument, a result, a config. `kind` is one of SB_NULL..SB_MAP and says
   which member of `as` is meant. Lists and maps nest at most 64 deep. */
struct sb_value {
    uint32_t kind;
    uint32_t reserved; /* 0 */
    union {
        uint8_t boolean; /* SB_BOOL: 0 or 1 */
        int64_t integer; /* SB_INT */
        double number;   /* SB_FLOAT */
        sb_str string;   /* SB_STRING */
        sb_bytes bytes;  /* SB_BYTES */
        struct {
            const sb_value *items;
            size_t len;
        } list; /* SB_LIST */
        struct {
            const sb_entry *entries;
            size_t len;
        } map; /* SB_MAP: keys are unique strings, in order */
    } as;
};

/* One key and value of a map. */
struct sb_entry {
    sb_str key;
    sb_value value;
};

/* An argument a callback reads, or an emitted event carries: its name and its type as a
   manifest writes it ("string", "int", "float", "bool", "bytes", "list", "map", "any",
   with a trailing "?" for an optional one). Static, NUL-terminated strings. */
typedef struct sb_arg {
    const char *name;
    const char *type;
} sb_arg;

/* One callback the plugin registers, read at load before any plugin code runs. */
typedef struct sb_callback {
    const char *event; /* the event, as the manifest declares it */
    const char *name;  /* 1 to 64 of [A-Za-z0-9_-], unique in the plugin, stable */
    int32_t priority;  /* higher runs earlier */
    uint32_t flags;    /* SB_CALLBACK_TYPED, or 0 for one that reads arguments by name */
    const sb_arg *reads; /* with SB_CALLBACK_TYPED: `read_count` arguments */
    size_t read_count;
} sb_callback;

/* An event the plugin may emit, with its arguments (so that tools can declare it). */
typedef struct sb_emit {
    const char *event;
    const sb_arg *args;
    size_t arg_count;
} sb_emit;

/* One call of a callback. Everything in it is borrowed for the call.
   For a callback registered with SB_CALLBACK_TYPED, `names` and `values` follow its `reads`:
   `values[i]` is the argument `reads[i]` names, so a typed callback reads its arguments by
   position, with no lookup. A callback without SB_CALLBACK_TYPED gets every argument of
   the event, in the manifest's order (find one with `sb_arg_of`). */
typedef struct sb_call {
    uint32_t struct_size; /* sizeof(sb_call) as the host built it */
    uint32_t callback;    /* the index of the callback in `sb_plugin.callbacks` */
    sb_str event;
    const sb_str *names;     /* the arguments' names (see above) */
    const sb_value *values;  /* `values[i]` is `names[i]`; SB_NULL for an optional one left out */
    size_t count;
    uint64_t request_id;     /* unique in the host process: the key of an async result */
    sb_str event_id;         /* the event's id: the sender's (emit --id, a run line's id,
                                X-Request-Id, a NATS message id) or one the host made; the
                                same on every delivery of the event, so key an effect that
                                must happen once by it. Empty from a host that predates it */
} sb_call;

/* What a hook answers, filled by the plugin. The host zeroes it (value SB_NULL) and sets
   `struct_size` before the call. After the hook returns, the host copies what it needs
   and then calls `release(release_data)` if `release` is not NULL: until then the value
   and the strings stay the plugin's and must not change. */
typedef struct sb_reply {
    uint32_t struct_size; /* sizeof(sb_reply) as the host built it */
    uint32_t reserved;
    sb_value value;       /* SB_OK: the result */
    const char *error;    /* SB_ERROR: the message, NUL-terminated */
    const char *help;     /* SB_ERROR: what to do about it, or NULL */
    void (*release)(void *release_data);
    void *release_data;
} sb_reply;

/* One callback's outcome in a nested emit: all of it owned by the host, valid until
   `callback_outcomes_free`. */
typedef struct sb_outcome {
    sb_str plugin;
    sb_str callback;
    int32_t status; /* SB_OK or SB_ERROR */
    uint32_t reserved;
    sb_value value; /* SB_OK */
    sb_str error;   /* SB_ERROR */
} sb_outcome;

typedef struct sb_outcomes {
    const sb_outcome *items;
    size_t count;
    void *host_data; /* the host's, for `callback_outcomes_free`; do not touch */
} sb_outcomes;

typedef struct sb_host sb_host;

/* The host's services. A handle passed to a hook is borrowed for that hook; one from
   `callback_keep` is owned by the plugin until it calls `callback_release`, and may be
   used from any thread until the plugin's `on_shutdown` returns. */
struct sb_host {
    uint32_t struct_size; /* sizeof(sb_host) as the host built it */
    uint16_t abi_major;
    uint16_t abi_minor;
    void *host_data; /* the host's; do not touch */
    /* The plugin's name in the manifest; borrowed, valid as long as the handle. */
    sb_str (*callback_plugin_name)(const sb_host *host);
    /* Logs through the host's logger under the plugin's name. */
    void (*callback_log)(const sb_host *host, int32_t level, sb_str message);
    /* Emits `event` with `count` arguments (borrowed); only from inside `on_call`, or from
       a kept handle. SB_OK with `*outcomes` set (free it with `callback_outcomes_free`), or
       SB_ERROR with `*outcomes` holding one outcome whose `error` says why. */
    int32_t (*callback_emit)(const sb_host *host, sb_str event, const sb_entry *args,
                             size_t count, sb_outcomes *outcomes);
    void (*callback_outcomes_free)(const sb_host *host, sb_outcomes *outcomes);
    /* 1 if the host supports the named feature ("nested_emit", "owned_host",
       "manifest_dir", "request_ids", "control"), else 0. */
    int32_t (*callback_has_feature)(const sb_host *host, sb_str feature);
    /* The absolute folder of the manifest: relative paths in a config are relative to it.
       Borrowed, valid as long as the handle. */
    sb_str (*callback_manifest_dir)(const sb_host *host);
    /* An owned handle for the plugin's own threads (NULL if the host has none). */
    const sb_host *(*callback_keep)(const sb_host *host);
    void (*callback_release)(const sb_host *kept);
};

/* What the plugin is: returned by `switchboard_plugin`, static, never freed. */
typedef struct sb_plugin {
    uint32_t struct_size; /* sizeof(sb_plugin) as the plugin was built */
    uint16_t abi_major;   /* SB_ABI_MAJOR */
    uint16_t abi_minor;   /* SB_ABI_MINOR */
    const char *name;     /* the plugin's own name and version, NUL-terminated */
    const char *version;
    const sb_callback *callbacks;
    size_t callback_count;
    size_t callback_size; /* sizeof(sb_callback) as the plugin was built */
    const sb_emit *emits;
    size_t emit_count;
    /* Creates the plugin's state from its config (a map, borrowed) into `*state`. */
    int32_t (*on_init)(const sb_host *host, const sb_value *config, void **state,
                       sb_reply *reply);
    /* Runs `call->callback`. Called from several threads at once: the state must be safe
       to share. */
    int32_t (*on_call)(void *state, const sb_call *call, const sb_host *host,
                       sb_reply *reply);
    /* Optional (NULL): answers a control operation by name. */
    int32_t (*on_control)(void *state, sb_str operation, const sb_value *argument,
                          const sb_host *host, sb_reply *reply);
    /* Optional (NULL): stops the plugin's threads and frees its state; called once. */
    int32_t (*on_shutdown)(void *state, const sb_host *host, sb_reply *reply);
} sb_plugin;

/* The entry point every C-ABI plugin exports: its table, built for SB_ABI_MAJOR. */
typedef const sb_plugin *(*sb_plugin_fn)(void);
SB_EXPORT const sb_plugin *switchboard_plugin(void);

/* Helpers, all inline. */

/* A string from a NUL-terminated one (borrowed). */
static inline sb_str sb_cstr(const char *text) {
    sb_str s;
    size_t n = 0;
    if (text) {
        while (text[n]) {
            n++;
        }
    }
    s.ptr = text;
    s.len = n;
    return s;
}

/* Whether `s` equals the NUL-terminated `text`. */
static inline int sb_str_eq(sb_str s, const char *text) {
    size_t i = 0;
    for (; i < s.len; i++) {
        if (!text[i] || text[i] != s.ptr[i]) {
            return 0;
        }
    }
    return text[i] == 0;
}

/* The argument called `name` of a call, or NULL. */
static inline const sb_value *sb_arg_of(const sb_call *call, const char *name) {
    size_t i;
    for (i = 0; i < call->count; i++) {
        if (sb_str_eq(call->names[i], name)) {
            return &call->values[i];
        }
    }
    return 0;
}

/* The value of key `key` in a map value, or NULL. */
static inline const sb_value *sb_map_get(const sb_value *map, const char *key) {
    size_t i;
    if (!map || map->kind != SB_MAP) {
        return 0;
    }
    for (i = 0; i < map->as.map.len; i++) {
        if (sb_str_eq(map->as.map.entries[i].key, key)) {
            return &map->as.map.entries[i].value;
        }
    }
    return 0;
}

/* Values to return. */
static inline sb_value sb_null(void) {
    sb_value v;
    v.kind = SB_NULL;
    v.reserved = 0;
    v.as.integer = 0;
    return v;
}

static inline sb_value sb_int(int64_t i) {
    sb_value v = sb_null();
    v.kind = SB_INT;
    v.as.integer = i;
    return v;
}

static inline sb_value sb_string(sb_str s) {
    sb_value v = sb_null();
    v.kind = SB_STRING;
    v.as.string = s;
    return v;
}

/* Fails a hook with a static message and help (NULL for none). */
static inline int32_t sb_fail(sb_reply *reply, const char *error, const char *help) {
    reply->error = error;
    reply->help = help;
    return SB_ERROR;
}

#ifdef __cplusplus
}
#endif

#endif /* SWITCHBOARD_H */
