//! The binary interface across plugin-api versions: a plugin built against the frozen
//! copy of plugin-api 1.0.0 in `tests/abi/v1.0` must keep loading in the current host.

use std::sync::OnceLock;

use switchboard::Switchboard;
use switchboard_plugin_api::Value;

use std::path::Path;

use crate::util::{cargo, profile_dir, summarize, workspace, Sandbox, PROBE_EVENTS};

fn profile_flag() -> &'static str {
    if profile_dir().ends_with("debug") {
        "dev"
    } else {
        "release"
    }
}

/// Builds `tests/abi/v1.0` (its own workspace) into the shared target folder, once.
fn build_legacy() {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        crate::util::build();
        let profile = profile_dir();
        let status = cargo()
            .args([
                "build",
                "--manifest-path",
                "tests/abi/v1.0/Cargo.toml",
                "--locked",
            ])
            .args([
                "--profile",
                if profile.ends_with("debug") {
                    "dev"
                } else {
                    "release"
                },
            ])
            .arg("--target-dir")
            .arg(profile.parent().unwrap())
            .status()
            .expect("cannot run cargo");
        assert!(
            status.success(),
            "building the plugin-api 1.0 fixture failed"
        );
    });
}

#[test]
fn a_plugin_built_against_plugin_api_1_0_loads_and_runs_in_this_host() {
    build_legacy();
    let sandbox = Sandbox::new(&format!(
        r#"
        {PROBE_EVENTS}
        [[plugins]]
        name = "old"
        library = "legacy"
        config = {{ label = "old" }}
        [[plugins]]
        name = "new"
        library = "probe"
        config = {{ label = "new" }}
        "#
    ));
    let host = Switchboard::open(&sandbox.manifest()).unwrap();
    let board = host.current();
    assert_eq!(board.plugins()[0].meta.info.api_version, "1.0.0");

    let echo = board
        .emit_named("echo", [("name", Value::borrowed("Ann"))])
        .unwrap();
    assert_eq!(
        summarize(&board, &echo),
        [
            r#"old.echo = "old saw Ann""#,
            r#"new.echo = {"name":"Ann","age":null}"#
        ]
    );
    let nest = board.emit(board.event("nest").unwrap(), &[]).unwrap();
    assert_eq!(summarize(&board, &nest)[0], "old.nest = 3");
    let fail = board.emit(board.event("fail").unwrap(), &[]).unwrap();
    assert_eq!(
        summarize(&board, &fail)[0],
        "old.fail#2 ! legacy refuses (help: it always does)"
    );
    let boom = board.emit(board.event("boom").unwrap(), &[]).unwrap();
    let error = boom.iter().next().unwrap().result.unwrap_err();
    assert!(
        error.is_panic() && error.message().contains("legacy exploded"),
        "{error}"
    );
}

/// Builds, once per name, the 1.0 `legacy` plugin as library `name` against a copy of
/// the frozen plugin-api changed by `edit` (given the copy's folder): a plugin built
/// against an incompatible plugin-api, for real. The copy lives under `target/`, so no
/// second copy of the source is committed.
pub fn build_variant(name: &str, edit: fn(&Path)) -> std::path::PathBuf {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static BUILT: Mutex<Option<HashMap<String, std::path::PathBuf>>> = Mutex::new(None);
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get_or_insert_with(HashMap::new).get(name) {
        return path.clone();
    }
    crate::util::build();
    let frozen = crate::util::workspace().join("tests/abi/v1.0");
    let root = profile_dir()
        .parent()
        .unwrap()
        .join("abi-variants")
        .join(name);
    let _ = std::fs::remove_dir_all(&root);
    // Cargo hashes a path package by its path relative to its workspace, so a copy in a
    // folder called `plugin-api` would share (and overwrite) the frozen copy's artifacts
    // in the common target folder.
    let api = format!("api-{name}");
    copy_dir(&frozen.join("plugin-api"), &root.join(&api));
    copy_dir(&frozen.join("legacy"), &root.join("plugin"));
    std::fs::copy(frozen.join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
    std::fs::write(
        root.join("Cargo.toml"),
        format!("[workspace]\nresolver = \"2\"\nmembers = [\"{api}\", \"plugin\"]\n"),
    )
    .unwrap();
    let manifest = root.join("plugin/Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    let text = text
        .replace("name = \"legacy\"", &format!("name = \"{name}\""))
        .replace("path = \"../plugin-api\"", &format!("path = \"../{api}\""));
    std::fs::write(&manifest, text).unwrap();
    edit(&root.join(&api));
    let status = cargo()
        .arg("build")
        .arg("--manifest-path")
        .arg(root.join("Cargo.toml"))
        .args(["--profile", profile_flag()])
        .arg("--target-dir")
        .arg(profile_dir().parent().unwrap())
        .status()
        .expect("cannot run cargo");
    assert!(status.success(), "building the `{name}` fixture failed");
    let library = crate::util::library(name);
    built
        .get_or_insert_with(HashMap::new)
        .insert(name.to_owned(), library.clone());
    library
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Replaces `from` with `to` in `file`, failing loudly if the frozen source moved on.
pub fn patch(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).unwrap();
    assert!(
        text.contains(from),
        "{} no longer contains {from:?}",
        file.display()
    );
    std::fs::write(file, text.replacen(from, to, 1)).unwrap();
}

/// PluginInfo gains a field: the layout every host checks changes.
pub fn layout_changed() -> std::path::PathBuf {
    build_variant("layout_changed", |api| {
        patch(
            &api.join("src/abi.rs"),
            "pub features: RSlice<'static, RStr<'static>>,\n}",
            "pub features: RSlice<'static, RStr<'static>>,\n    /// Added.\n    pub extra: u32,\n}",
        );
        patch(
            &api.join("src/export.rs"),
            "features: RSlice::from_slice(&[]),",
            "features: RSlice::from_slice(&[]),\n        extra: 0,",
        );
    })
}

/// The same interface, released as plugin-api 2.0.0.
pub fn api_v2() -> std::path::PathBuf {
    build_variant("api_v2", |api| {
        patch(
            &api.join("Cargo.toml"),
            "version = \"1.0.0\"",
            "version = \"2.0.0\"",
        );
    })
}

/// `module::NAME = value` for every integer constant in a plugin-api source file: these
/// travel across the boundary as plain numbers, so no layout check sees them change.
fn boundary_constants(root: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for file in ["abi.rs", "error.rs", "value.rs"] {
        let text = std::fs::read_to_string(root.join("src").join(file)).unwrap();
        let mut module = file.trim_end_matches(".rs").to_owned();
        for line in text.lines().map(str::trim) {
            if let Some(rest) = line.strip_prefix("pub mod ") {
                module = rest.trim_end_matches(" {").to_owned();
            }
            let Some(rest) = line
                .strip_prefix("pub const ")
                .or(line.strip_prefix("const "))
            else {
                continue;
            };
            if let Some((name, value)) = rest.split_once(':') {
                if let Some((ty, value)) = value.split_once('=') {
                    if ["u8", "u32", "i32", "u64", "i64"].contains(&ty.trim()) {
                        found.push(format!(
                            "{module}::{name} = {}",
                            value.trim_end_matches(';').trim()
                        ));
                    }
                }
            }
        }
    }
    found.sort();
    found
}

#[test]
fn numbers_that_cross_the_boundary_keep_their_frozen_values() {
    let current = boundary_constants(&workspace().join("plugin-api"));
    let frozen = boundary_constants(&workspace().join("tests/abi/v1.0/plugin-api"));
    assert!(
        current.iter().any(|c| c == "level::INFO = 3") && current.len() >= 10,
        "the scan finds the constants: {current:?}"
    );
    assert_eq!(
        current, frozen,
        "a constant that plugins built against 1.0 rely on changed (log levels, call statuses, error kinds)"
    );
}
