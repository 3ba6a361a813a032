//! The binary interface across plugin-api versions: a plugin built against the frozen
//! copy of plugin-api 1.0.0 in `tests/abi/v1.0` must keep loading in the current host.

use std::sync::OnceLock;

use switchboard::Switchboard;
use switchboard_plugin_api::Value;

use crate::util::{cargo, profile_dir, summarize, Sandbox, PROBE_EVENTS};

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
    let board = Switchboard::open(&sandbox.manifest()).unwrap();
    assert_eq!(board.registry().plugins()[0].info.api_version, "1.0.0");

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
    let error = boom.iter().next().unwrap().result.as_ref().unwrap_err();
    assert!(
        error.is_panic() && error.message().contains("legacy exploded"),
        "{error}"
    );
}
