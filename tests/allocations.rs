//! The hot path allocates nothing: a batch of emits with borrowed arguments, whose callbacks
//! return nothing, makes no heap allocation in the host (counted by this binary's global
//! allocator) nor in the plugin (counted by the `bench` fixture's own allocator).
//!
//! A binary of its own, so that the counting allocator sees only this test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use std::sync::Arc;

use switchboard::{Generation, Outcomes, Switchboard};
use switchboard_plugin_api::Value;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

/// Counts the allocations of the current thread, so that other threads of the test
/// harness cannot disturb the count.
struct Counting;

// SAFETY: every method forwards to the system allocator unchanged; counting touches only a
// const-initialized thread-local without a destructor, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with `layout`, as `alloc` did.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on as is.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn host_allocations() -> u64 {
    ALLOCATIONS.with(Cell::get)
}

/// Three `bench` plugins on `user_joined`, as in the benchmarks.
fn board() -> (tempfile::TempDir, Switchboard, Arc<Generation>) {
    let dir = tempfile::tempdir().unwrap();
    let plugins: String = (1..=3)
        .map(|i| format!("[[plugins]]\nname = \"bench{i}\"\nlibrary = \"bench\"\n"))
        .collect();
    let manifest = format!(
        "[host]\nplugin_dir = {:?}\n\n[events.user_joined]\nargs = {{ name = \"string\", email = \"string\" }}\n[events.user_lookup]\nargs = {{ email = \"string\" }}\nresult = \"first\"\n[events.bench_total]\n[events.bench_allocations]\n\n{plugins}",
        switchboard_tests::profile_dir()
    );
    std::fs::write(dir.path().join("events.toml"), manifest).unwrap();
    switchboard_tests::library("bench");
    let host = Switchboard::open(&dir.path().join("events.toml")).unwrap();
    let board = host.current();
    (dir, host, board)
}

/// The sum of every callback's integer result for a no-argument event.
fn sum_of(board: &Generation, event: &str) -> i64 {
    let id = board.event(event).unwrap();
    board
        .emit(id, &[])
        .unwrap()
        .iter()
        .map(|o| o.result.as_ref().unwrap().as_i64().unwrap())
        .sum()
}

#[test]
fn emits_with_borrowed_arguments_allocate_nothing() {
    let (_dir, _host, board) = board();
    let joined = board.event("user_joined").unwrap();
    let name = String::from("Ann");
    let email = String::from("ann@example.com");
    let args = [Value::borrowed(&name), Value::borrowed(&email)];
    let mut outcomes = Outcomes::new();
    // The first emit sizes the outcome buffer; every later one reuses it.
    board.emit_into(joined, &args, &mut outcomes).unwrap();
    let plugin_before = sum_of(&board, "bench_allocations");
    assert!(
        plugin_before > 0,
        "the plugin's counter counts (init allocates)"
    );
    let total_before = sum_of(&board, "bench_total");

    const EMITS: u64 = 10_000;
    let host_before = host_allocations();
    for _ in 0..EMITS {
        board.emit_into(joined, &args, &mut outcomes).unwrap();
    }
    let host_during = host_allocations() - host_before;

    // The bench libraries share one allocator counter, so the three plugins' sums count
    // it three times.
    let plugin_during = (sum_of(&board, "bench_allocations") - plugin_before) / 3;
    let work = sum_of(&board, "bench_total") - total_before;
    assert_eq!(
        work,
        (EMITS * 3 * (name.len() + email.len()) as u64) as i64,
        "every callback ran on every emit"
    );
    assert_eq!(outcomes.len(), 3);
    assert_eq!(host_during, 0, "the host allocated during {EMITS} emits");
    assert_eq!(
        plugin_during, 0,
        "the plugins allocated during {EMITS} emits"
    );
}

#[test]
fn the_counting_allocator_sees_allocations() {
    // Guards the test above against an allocator that counts nothing.
    let before = host_allocations();
    let v: Vec<u8> = std::hint::black_box(Vec::with_capacity(64));
    drop(v);
    assert_eq!(host_allocations() - before, 1);
}

/// The same for C-ABI plugins (`tests/c-abi/bench.c`, built by gcc): the host's side of a
/// C callback (lowering the arguments, the call, the answer) allocates nothing either.
#[cfg(target_os = "linux")]
#[test]
fn emits_to_c_plugins_allocate_nothing_in_the_host() {
    let library =
        switchboard_tests::c_library("gcc", &["tests/c-abi/bench.c"], "cbench", &["-std=c11"]);
    let dir = tempfile::tempdir().unwrap();
    let plugins: String = (1..=3)
        .map(|i| {
            format!(
                "[[plugins]]\nname = \"cbench{i}\"\npath = {:?}\n",
                library.to_str().unwrap()
            )
        })
        .collect();
    let manifest = format!(
        "[host]\nplugin_dir = \".\"\n\n[events.user_joined]\nargs = {{ name = \"string\", email = \"string\" }}\n[events.user_lookup]\nargs = {{ email = \"string\" }}\nresult = \"first\"\n[events.bench_total]\n\n{plugins}"
    );
    std::fs::write(dir.path().join("events.toml"), manifest).unwrap();
    let host = Switchboard::open(&dir.path().join("events.toml")).unwrap();
    let board = host.current();
    let joined = board.event("user_joined").unwrap();
    let name = String::from("Ann");
    let email = String::from("ann@example.com");
    let args = [Value::borrowed(&name), Value::borrowed(&email)];
    let mut outcomes = Outcomes::new();
    // The first emit sizes the outcome buffer and finds each callback's arguments.
    board.emit_into(joined, &args, &mut outcomes).unwrap();
    let total_before = sum_of(&board, "bench_total");

    const EMITS: u64 = 10_000;
    let host_before = host_allocations();
    for _ in 0..EMITS {
        board.emit_into(joined, &args, &mut outcomes).unwrap();
    }
    let host_during = host_allocations() - host_before;
    let work = sum_of(&board, "bench_total") - total_before;
    assert_eq!(work, (EMITS * 3 * (name.len() + email.len()) as u64) as i64);
    assert_eq!(
        host_during, 0,
        "the host allocated during {EMITS} emits to C plugins"
    );
}
