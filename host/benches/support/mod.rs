//! What the benchmarks share: manifests for N copies of the `bench` fixture plugin, and
//! the real libraries and binary, built once.

#![allow(dead_code)] // each bench binary uses part of it

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use abi_stable::library::lib_header_from_path;
use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::sabi_types::RRef;
use abi_stable::std_types::{RResult, RSlice, RStr, RString, RVec};
use std::sync::Arc;

use switchboard::{Generation, Switchboard};
use switchboard_plugin_api::abi::{
    ArgsRaw, CallEntry, HostApi, HostApi_TO, HostBox, Outcome, PluginBox, PluginModuleRef,
};
use switchboard_plugin_api::{Entry, Error, Value};

/// The reference payload.
pub const NAME: &str = "Ann";
/// The reference payload.
pub const EMAIL: &str = "ann@example.com";

/// The event declarations of the reference workload.
pub const EVENTS: &str = r#"
[events.user_joined]
doc = "the reference workload: two strings, each callback adds their lengths"
args = { name = "string", email = "string" }

[events.user_lookup]
args = { email = "string" }
result = "first"

[events.bench_total]
[events.bench_allocations]
"#;

/// The built `bench` library (built with the workspace on first use).
pub fn bench_library() -> PathBuf {
    switchboard_tests::library("bench")
}

/// The built `switchboard` binary.
pub fn binary() -> PathBuf {
    switchboard_tests::binary()
}

/// `switchboard --quiet run --workers N` in `folder`, over its `events.jsonl`; its standard
/// output when `keep_output`, and it must succeed.
pub fn run_switchboard(folder: &Path, workers: u32, keep_output: bool) -> Vec<u8> {
    use std::process::{Command, Stdio};
    let input = std::fs::File::open(folder.join("events.jsonl")).unwrap();
    let output = Command::new(binary())
        .args(["--quiet", "run", "--workers", &workers.to_string()])
        .current_dir(folder)
        .stdin(input)
        .stdout(if keep_output {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stderr(Stdio::null())
        .output()
        .expect("cannot start switchboard");
    assert!(output.status.success(), "switchboard run failed");
    output.stdout
}

/// How the reference callback counts its work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counting {
    /// A relaxed load and store: the plain add the single-threaded peers do.
    Add,
    /// `fetch_add`: a locked read-modify-write, exact under concurrent calls.
    FetchAdd,
}

impl Counting {
    /// The suffix that tells the two apart in benchmark names.
    pub fn suffix(self) -> &'static str {
        match self {
            Counting::Add => "",
            Counting::FetchAdd => "-rmw",
        }
    }
}

/// A manifest with `plugins` instances of the `bench` library, from `dir`; the last one
/// answers `user_lookup`.
pub fn manifest(dir: &Path, plugins: usize, counting: Counting) -> String {
    let rmw = counting == Counting::FetchAdd;
    let mut text = format!("[host]\nplugin_dir = {dir:?}\n{EVENTS}\n");
    for i in 1..=plugins {
        let answers = i == plugins;
        text.push_str(&format!(
            "[[plugins]]\nname = \"bench{i}\"\nlibrary = \"bench\"\nconfig = {{ answers = {answers}, rmw = {rmw} }}\n\n"
        ));
    }
    text
}

/// A folder holding an `events.toml` for `plugins` bench plugins.
pub fn manifest_dir(plugins: usize, counting: Counting) -> tempfile::TempDir {
    let folder = tempfile::tempdir().expect("cannot create a temporary folder");
    let libraries = bench_library().parent().unwrap().to_owned();
    std::fs::write(
        folder.path().join("events.toml"),
        manifest(&libraries, plugins, counting),
    )
    .unwrap();
    folder
}

/// A running host and its current generation, which emits go to.
pub struct Board {
    _host: Switchboard,
    generation: Arc<Generation>,
}

impl std::ops::Deref for Board {
    type Target = Generation;

    fn deref(&self) -> &Generation {
        &self.generation
    }
}

/// A running host with `plugins` bench plugins, each with one `user_joined` callback.
pub fn board(plugins: usize, counting: Counting) -> (tempfile::TempDir, Board) {
    let folder = manifest_dir(plugins, counting);
    let host = Switchboard::open(&folder.path().join("events.toml"))
        .unwrap_or_else(|e| panic!("cannot start the bench host: {e}"));
    let generation = host.current();
    (
        folder,
        Board {
            _host: host,
            generation,
        },
    )
}

/// A running host with `plugins` instances of the C-ABI twin of the bench plugin, the
/// library at `library` (`tests/c-abi/bench.c`, built by `bench/compare.sh`).
pub fn c_board(plugins: usize, counting: Counting, library: &Path) -> (tempfile::TempDir, Board) {
    let folder = tempfile::tempdir().expect("cannot create a temporary folder");
    let rmw = counting == Counting::FetchAdd;
    let mut text = format!("[host]\nplugin_dir = \".\"\n{EVENTS}\n");
    for i in 1..=plugins {
        let answers = i == plugins;
        text.push_str(&format!(
            "[[plugins]]\nname = \"cbench{i}\"\npath = {library:?}\nconfig = {{ answers = {answers}, rmw = {rmw} }}\n\n"
        ));
    }
    std::fs::write(folder.path().join("events.toml"), text).unwrap();
    let host = Switchboard::open(&folder.path().join("events.toml"))
        .unwrap_or_else(|e| panic!("cannot start the C bench host: {e}"));
    let generation = host.current();
    (
        folder,
        Board {
            _host: host,
            generation,
        },
    )
}

/// The total work the plugins did (the sum of their counters).
pub fn total_work(board: &Generation) -> i64 {
    let id = board.event("bench_total").unwrap();
    board
        .emit(id, &[])
        .unwrap()
        .iter()
        .map(|o| o.result.as_ref().unwrap().as_i64().unwrap())
        .sum()
}

static DIRECT_TOTAL: AtomicU64 = AtomicU64::new(0);

/// The reference callback as a plain Rust function: the floor.
fn direct(name: &str, email: &str) {
    let total = DIRECT_TOTAL.load(Ordering::Relaxed);
    DIRECT_TOTAL.store(total + (name.len() + email.len()) as u64, Ordering::Relaxed);
}

/// The same with `fetch_add`.
fn direct_rmw(name: &str, email: &str) {
    DIRECT_TOTAL.fetch_add((name.len() + email.len()) as u64, Ordering::Relaxed);
}

/// `n` function pointers to the reference callback.
pub fn direct_callbacks(n: usize, counting: Counting) -> Vec<fn(&str, &str)> {
    match counting {
        Counting::Add => vec![direct; n],
        Counting::FetchAdd => vec![direct_rmw; n],
    }
}

/// Calls every function pointer, as an emit would.
#[inline(never)]
pub fn call_direct(callbacks: &[fn(&str, &str)], name: &str, email: &str) {
    for callback in black_box(callbacks) {
        callback(name, email);
    }
}

/// The host handle the raw-ABI baseline passes: it offers nothing.
struct NoHost;

impl HostApi for NoHost {
    fn plugin_name(&self) -> RStr<'_> {
        RStr::from("bench")
    }

    fn log(&self, _level: u8, _message: RStr<'_>) {}

    fn emit(&self, _: RStr<'_>, _: RSlice<'_, Entry<'_>>) -> RResult<RVec<Outcome>, Error> {
        RResult::RErr(Error::new("no host in this benchmark"))
    }

    fn features(&self) -> RSlice<'static, RStr<'static>> {
        RSlice::from_slice(&[])
    }

    fn keep(&self) -> RResult<HostBox, Error> {
        RResult::RErr(Error::new("no host in this benchmark"))
    }

    fn call(&self, _: RStr<'_>, _: &Value<'_>) -> RResult<Value<'static>, Error> {
        RResult::RErr(Error::new("no host in this benchmark"))
    }
}

/// Instances of the bench plugin initialized through the library's root module directly,
/// without the host: what the stable ABI costs by itself.
pub struct RawPlugins {
    /// Owns what `entries` point to.
    _instances: Vec<PluginBox>,
    entries: Vec<CallEntry>,
    names: [RString; 2],
}

impl RawPlugins {
    /// `n` instances of the bench library.
    pub fn new(n: usize, counting: Counting) -> RawPlugins {
        let header = lib_header_from_path(&bench_library()).expect("cannot open the bench library");
        let module = header
            .init_root_module::<PluginModuleRef>()
            .expect("the bench library is not a compatible plugin");
        let callback = module.describe()()
            .into_result()
            .expect("describe failed")
            .callbacks
            .iter()
            .find(|r| r.event.as_str() == "user_joined")
            .expect("no user_joined callback")
            .id;
        let config = Value::map([
            ("answers", Value::from(false)),
            ("rmw", Value::from(counting == Counting::FetchAdd)),
        ]);
        let instances: Vec<PluginBox> = (0..n)
            .map(|_| {
                let host = HostApi_TO::from_ptr(RRef::new(&NoHost), TD_Opaque);
                module.init()(&config, host)
                    .into_result()
                    .expect("init failed")
            })
            .collect();
        let entries = instances
            .iter()
            .map(|i| i.entries()[callback as usize])
            .collect();
        RawPlugins {
            _instances: instances,
            entries,
            names: ["name".into(), "email".into()],
        }
    }

    /// Calls every instance's `user_joined` callback once.
    #[inline(never)]
    pub fn call_all(&self, name: &str, email: &str) {
        let values = [Value::borrowed(name), Value::borrowed(email)];
        let raw = ArgsRaw {
            event: RStr::from("user_joined"),
            names: RSlice::from_slice(&self.names),
            values: RSlice::from_slice(&values),
            request: 0,
        };
        let mut slot = RResult::ROk(Value::NULL);
        for entry in &self.entries {
            let host = HostApi_TO::from_ptr(RRef::new(&NoHost), TD_Opaque);
            // SAFETY: the entry's instance is owned by `self._instances`, alive here.
            black_box(unsafe { (entry.call)(entry.state, entry.data, &raw, host, &mut slot) });
        }
    }
}
