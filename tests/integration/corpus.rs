//! The corpus in `tests/bad-inputs/manifests`: every file is refused with the error kind
//! and words its first line expects, with file and line shown, exit code 2, no panic.

use crate::util::{profile_dir, workspace, Sandbox};

struct Expectation {
    kind: String,
    words: Vec<String>,
}

fn expectation(text: &str) -> Option<Expectation> {
    let rest = text.lines().next()?.strip_prefix("# expect: ")?;
    let (kind, words) = rest.split_once(": ")?;
    Some(Expectation {
        kind: kind.to_owned(),
        words: words.split(" | ").map(str::to_owned).collect(),
    })
}

#[test]
fn every_bad_manifest_is_refused_with_its_expected_error() {
    let dir = workspace().join("tests/bad-inputs/manifests");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        files.len() >= 25,
        "the corpus has only {} manifests",
        files.len()
    );
    let mut mismatches = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        // Bytes, not text: a manifest that is not UTF-8 belongs in the corpus too.
        let bytes = std::fs::read(file).unwrap();
        let Some(expect) = expectation(&String::from_utf8_lossy(&bytes)) else {
            mismatches.push(format!("{name}: no `# expect: KIND: words` first line"));
            continue;
        };
        let sandbox = Sandbox::new("");
        match String::from_utf8(bytes) {
            Ok(text) => {
                sandbox.write(
                    "events.toml",
                    &text.replace("@PLUGIN_DIR@", profile_dir().to_str().unwrap()),
                );
            }
            Err(e) => std::fs::write(sandbox.manifest(), e.as_bytes()).unwrap(),
        }

        let json = sandbox.run(&["--format", "json", "check"]);
        let text_run = sandbox.run(&["check"]);
        for (mode, run) in [("json", &json), ("text", &text_run)] {
            if run.code() != 2 {
                mismatches.push(format!(
                    "{name} ({mode}): exit code {}, expected 2",
                    run.code()
                ));
            }
            if run.stderr().contains("panicked at") || run.stderr().contains("RUST_BACKTRACE") {
                mismatches.push(format!(
                    "{name} ({mode}): the host panicked:\n{}",
                    run.stderr()
                ));
            }
        }
        let error: serde_json::Value = json
            .stderr()
            .lines()
            .find(|l| l.starts_with(r#"{"error""#))
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default();
        let error = &error["error"];
        let (kind, message) = match error["plugins"].as_array() {
            Some(plugins) => (plugins[0]["kind"].as_str(), plugins[0]["message"].as_str()),
            None => (error["kind"].as_str(), error["message"].as_str()),
        };
        if kind != Some(expect.kind.as_str()) {
            mismatches.push(format!("{name}: kind {kind:?}, expected {}", expect.kind));
        }
        let message = message.unwrap_or_default();
        for word in &expect.words {
            if !message.contains(word.as_str()) {
                mismatches.push(format!("{name}: {word:?} not in:\n{message}"));
            }
        }
        // People see where: manifest errors point at the file and line.
        if expect.kind.starts_with("manifest.") && !text_run.stderr().contains(" --> ") {
            mismatches.push(format!(
                "{name}: no ` --> file:line:column` in:\n{}",
                text_run.stderr()
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches:\n\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
}
