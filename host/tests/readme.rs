//! The README's embedding example is `examples/embed.rs`, which the test suite compiles:
//! this keeps the two from drifting apart.

#[test]
fn the_readme_embedding_example_is_the_compiled_example() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("../README.md")).expect("README.md");
    let example = std::fs::read_to_string(root.join("examples/embed.rs")).expect("embed.rs");
    let code: Vec<&str> = example.lines().filter(|l| !l.starts_with("//!")).collect();
    let section = readme
        .split("## Embedding the host")
        .nth(1)
        .expect("the README has an embedding section");
    let block = section
        .split("```rust\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the embedding section has a rust block");
    assert_eq!(
        block.trim(),
        code.join("\n").trim(),
        "README.md's embedding example differs from host/examples/embed.rs"
    );
}
