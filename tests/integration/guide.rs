//! The README's plugin guide, as a new user follows it: its `Cargo.toml` and `lib.rs`,
//! exactly as printed, become a crate outside this workspace that depends on plugin-api by
//! path; its tests (the README's test snippet) pass, and the library loads into the host.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use switchboard::Switchboard;
use switchboard_plugin_api::Value;

use crate::util::{cargo, profile_dir, summarize, workspace, Sandbox};

/// The code block that follows `<!-- guide: NAME -->` in the README.
fn guide_block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- guide: {name} -->");
    let start = readme
        .find(&marker)
        .unwrap_or_else(|| panic!("the README lost its `{marker}` block"));
    let after = &readme[start + marker.len()..];
    let fence = after.find("```").unwrap();
    let body = &after[fence..];
    let body = &body[body.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_owned()
}

/// The guide's crate, built (and tested) once: its folder and its library.
fn guide_plugin() -> &'static (tempfile::TempDir, PathBuf) {
    static BUILT: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        crate::util::build();
        let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
        let folder = tempfile::tempdir().unwrap();
        let root = folder.path().join("hello");
        std::fs::create_dir_all(root.join("src")).unwrap();

        let api = workspace().join("plugin-api");
        let manifest = guide_block(&readme, "Cargo.toml");
        assert!(manifest.contains(r#"path = "../switchboard/plugin-api""#));
        let manifest = manifest.replace(
            r#"path = "../switchboard/plugin-api""#,
            &format!("path = {:?}", api.to_str().unwrap()),
        );
        // Its own workspace, and the same dependency versions as ours (so the build is
        // offline and reuses what the shared target folder already has).
        std::fs::write(
            root.join("Cargo.toml"),
            format!("{manifest}\n[dev-dependencies]\nserde_json = \"1\"\n\n[workspace]\n"),
        )
        .unwrap();
        std::fs::copy(workspace().join("Cargo.lock"), root.join("Cargo.lock")).unwrap();
        let lib = guide_block(&readme, "lib.rs");
        let test = guide_block(&readme, "test");
        std::fs::write(
            root.join("src/lib.rs"),
            format!("{lib}\n#[cfg(test)]\nmod tests {{\n    use super::*;\n{test}}}\n"),
        )
        .unwrap();

        // The shared target folder: the dependencies are already built there.
        let target = profile_dir().parent().unwrap().to_owned();
        for command in ["test", "build"] {
            let status = cargo()
                .current_dir(&root)
                .args([command, "--release", "--offline", "--target-dir"])
                .arg(&target)
                .status()
                .expect("cannot run cargo");
            assert!(
                status.success(),
                "`cargo {command}` of the README's plugin failed"
            );
        }
        let library = profile_dir().join(format!(
            "{}hello{}",
            std::env::consts::DLL_PREFIX,
            std::env::consts::DLL_SUFFIX
        ));
        (folder, library)
    })
}

#[test]
fn the_guide_plugin_is_at_most_25_lines() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).unwrap();
    let lines = guide_block(&readme, "lib.rs")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(
        lines <= 25,
        "the README's complete plugin has {lines} lines"
    );
}

fn sandbox(library: &Path, config: &str) -> Sandbox {
    Sandbox::new(&format!(
        r#"
        [events.user_joined]
        args = {{ name = "string", email = "string" }}
        [events.user_left]
        args = {{ name = "string", email = "string" }}
        [[plugins]]
        name = "hello"
        path = {:?}
        config = {config}
        "#,
        library.to_str().unwrap()
    ))
}

#[test]
fn the_guide_plugin_builds_outside_the_workspace_and_runs_in_the_host() {
    let (_folder, library) = guide_plugin();
    let ann = [
        ("name", Value::borrowed("Ann")),
        ("email", Value::borrowed("ann@example.com")),
    ];

    let s = sandbox(library, "{ greeting = \"Hi\" }");
    let host = Switchboard::open(&s.manifest()).unwrap();
    let board = host.current();
    let joined = board.emit_named("user_joined", ann.clone()).unwrap();
    assert_eq!(summarize(&board, &joined), [r#"hello.greet = "Hi, Ann!""#]);
    let left = board.emit_named("user_left", ann.clone()).unwrap();
    assert_eq!(
        summarize(&board, &left),
        [r#"hello.farewell = "Goodbye, Ann!""#]
    );
    drop(board);
    drop(host);

    // Defaults: no greeting given; `shout` from the manifest.
    let s = sandbox(library, "{ shout = true }");
    let run = s.run(&["emit", "user_joined", "name=Ann", "email=ann@example.com"]);
    run.assert_code(0);
    assert!(run.stdout().contains("WELCOME, ANN!"), "{}", run.stdout());
    assert!(run.stderr().contains("greeted 1 users"), "{}", run.stderr());

    // A misspelt config key is refused, naming it.
    let s = sandbox(library, "{ shuot = true }");
    let run = s.run(&["check"]);
    run.assert_code(2);
    assert!(
        run.stderr().contains("unknown key `shuot`"),
        "{}",
        run.stderr()
    );
}
