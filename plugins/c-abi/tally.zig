//! tally: a Zig plugin over switchboard.h: counts sign-ups, and names each one's email domain.
//! Build (the header translated to a Zig module first, as Zig 0.16 and later import C):
//!   python3 -m ziglang translate-c -lc -I plugin-api/include plugin-api/include/switchboard.h > switchboard.zig
//!   python3 -m ziglang build-lib -dynamic -O ReleaseSafe -lc --dep switchboard -Mroot=plugins/c-abi/tally.zig -Mswitchboard=switchboard.zig -femit-bin=libtally.so
const std = @import("std");
const sb = @import("switchboard");

var joined = std.atomic.Value(i64).init(0);

fn onInit(host: [*c]const sb.sb_host, config: [*c]const sb.sb_value, state: [*c]?*anyopaque, reply: [*c]sb.sb_reply) callconv(.c) i32 {
    _ = config;
    _ = reply;
    const hello = "tally is ready";
    host.*.callback_log.?(host, sb.SB_LOG_INFO, .{ .ptr = hello, .len = hello.len });
    state.* = null;
    return sb.SB_OK;
}

/// Frees an answer once the host has copied it.
fn release(data: ?*anyopaque) callconv(.c) void {
    std.c.free(data);
}

fn onCall(state: ?*anyopaque, call: [*c]const sb.sb_call, host: [*c]const sb.sb_host, reply: [*c]sb.sb_reply) callconv(.c) i32 {
    _ = state;
    _ = host;
    if (call.*.callback == 0) { // user_joined -> count: reads email
        const email = sb.sb_arg_of(call, "email");
        const text = email.*.as.string.ptr[0..email.*.as.string.len];
        const at = std.mem.indexOfScalar(u8, text, '@') orelse text.len;
        const n = joined.fetchAdd(1, .monotonic) + 1;
        const size = text.len + 64;
        const memory: [*]u8 = @ptrCast(std.c.malloc(size) orelse return sb.sb_fail(reply, "out of memory", null));
        const out = std.fmt.bufPrint(memory[0..size], "{s}: sign-up {d} (from Zig)", .{ text[@min(at + 1, text.len)..], n }) catch unreachable;
        reply.*.value = sb.sb_string(.{ .ptr = out.ptr, .len = out.len });
        reply.*.release = release; // the host copies the answer, then calls this
        reply.*.release_data = memory;
        return sb.SB_OK;
    }
    reply.*.value = sb.sb_int(joined.load(.monotonic)); // tally_count -> total
    return sb.SB_OK;
}

const reads = [_]sb.sb_arg{.{ .name = "email", .type = "string" }};
const callbacks = [_]sb.sb_callback{
    .{ .event = "user_joined", .name = "count", .priority = 0, .flags = sb.SB_CALLBACK_TYPED, .reads = &reads, .read_count = reads.len },
    .{ .event = "tally_count", .name = "total", .priority = 0, .flags = sb.SB_CALLBACK_TYPED, .reads = null, .read_count = 0 },
};
const plugin = sb.sb_plugin{
    .struct_size = @sizeOf(sb.sb_plugin),
    .abi_major = sb.SB_ABI_MAJOR,
    .abi_minor = sb.SB_ABI_MINOR,
    .name = "tally",
    .version = "0.1.0",
    .callbacks = &callbacks,
    .callback_count = callbacks.len,
    .callback_size = @sizeOf(sb.sb_callback),
    .emits = null,
    .emit_count = 0,
    .on_init = onInit,
    .on_call = onCall,
    .on_control = null,
    .on_shutdown = null,
};

export fn switchboard_plugin() callconv(.c) *const sb.sb_plugin {
    return &plugin;
}
