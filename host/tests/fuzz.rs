//! Bounded fuzzing that runs on stable Rust in every test run: seeded mutations of real
//! manifests through the parser, validator and diagnostics renderer, and random text
//! through the argument parsers. Nothing may panic. `SWITCHBOARD_FUZZ_ITERATIONS` sets the
//! number of inputs per target (default 20,000); the coverage-guided targets in `fuzz/`
//! go further with cargo-fuzz.
// Test set-up that fails should stop the test loudly.
#![allow(clippy::unwrap_used)]

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use switchboard::manifest::schema::ArgType;
use switchboard::{Manifest, Prepared, ValidManifest};

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iterations() -> usize {
    std::env::var("SWITCHBOARD_FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000)
}

const TOKENS: &[&str] = &[
    "[",
    "]",
    "{",
    "}",
    "=",
    "\"",
    "'",
    ".",
    ",",
    "#",
    "\n",
    "\\",
    " ",
    "0",
    "-1",
    "1e999",
    "[[plugins]]",
    "[events.",
    "[host]",
    "name",
    "args",
    "\"string?\"",
    "result = \"first\"",
    "é",
    "😀",
    "\u{0}",
    "\r\n",
    "'''",
    "\"\"\"",
    "true",
    "1979-05-27T07:32:00Z",
    "inf",
    "nan",
    "breaker = {",
    "sha256 = \"",
    "library = \"..",
    "max_depth = 0",
    "}",
    "]]",
];

fn mutate(rng: &mut Rng, seeds: &[String]) -> String {
    let mut text = seeds[rng.below(seeds.len())].clone().into_bytes();
    for _ in 0..=rng.below(6) {
        let at = rng.below(text.len() + 1);
        match rng.below(5) {
            0 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                text.splice(at..at, token.bytes());
            }
            1 => {
                let end = (at + rng.below(16)).min(text.len());
                text.drain(at..end);
            }
            2 if !text.is_empty() => {
                let i = rng.below(text.len());
                text[i] = rng.next() as u8;
            }
            3 => {
                let other = seeds[rng.below(seeds.len())].as_bytes();
                let from = rng.below(other.len());
                let to = (from + rng.below(64)).min(other.len());
                text.splice(at..at, other[from..to].iter().copied());
            }
            _ => text.truncate(at),
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn seeds() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned();
    let mut seeds = vec![std::fs::read_to_string(root.join("events.toml")).unwrap()];
    for entry in std::fs::read_dir(root.join("tests/bad-inputs/manifests")).unwrap() {
        // Lossy: the corpus holds a manifest that is not UTF-8 on purpose.
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        seeds.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    seeds
}

/// Runs `body`, failing with the input that made it panic.
fn must_not_panic(what: &str, input: &str, body: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(body)).is_err() {
        panic!("{what} panicked on input {input:?}");
    }
}

/// Parses, validates and renders one manifest text the way `switchboard check` does.
fn parse_and_render(input: &str) {
    let path = PathBuf::from("fuzz/events.toml");
    must_not_panic("manifest parsing", input, || {
        let result = Manifest::parse(input, &path).and_then(|m| {
            let m = m.validate()?;
            let _ = m.plugin_dir();
            for plugin in m.plugins() {
                let _ = plugin.library.display().to_string();
            }
            Ok(())
        });
        if let Err(error) = result {
            let _ = error.to_string();
        }
    });
}

#[test]
fn the_manifest_parser_and_its_diagnostics_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5EED_0001);
    for _ in 0..iterations() {
        parse_and_render(&mutate(&mut rng, &seeds));
    }
}

/// Every input cargo-fuzz ever crashed on stays fixed (see fuzz/regressions).
#[test]
fn past_fuzz_crashes_stay_fixed() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for entry in std::fs::read_dir(folder).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        parse_and_render(&String::from_utf8_lossy(&bytes));
        replayed += 1;
    }
    assert!(replayed >= 2, "the regression inputs went missing");
}

fn random_text(rng: &mut Rng) -> String {
    const PIECES: &[&str] = &[
        "null",
        "[1,2]",
        "{\"a\":1}",
        "-0.5",
        "999999999999999999999999999999",
        "[300]",
        "\"text\"",
    ];
    let mut text = String::new();
    for _ in 0..rng.below(8) {
        match rng.below(4) {
            0 => text.push_str(TOKENS[rng.below(TOKENS.len())]),
            1 => text.push_str(&(rng.next() as i64).to_string()),
            2 => text.push(char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('x')),
            _ => text.push_str(PIECES[rng.below(PIECES.len())]),
        }
    }
    text
}

#[test]
fn argument_parsing_never_panics() {
    let kinds = [
        "string", "int", "float", "bool", "bytes", "list", "map", "any",
    ];
    let types: Vec<ArgType> = kinds
        .iter()
        .flat_map(|k| {
            [
                ArgType::parse(k).unwrap(),
                ArgType::parse(&format!("{k}?")).unwrap(),
            ]
        })
        .collect();
    let declared: Vec<String> = kinds.iter().map(|k| format!("a_{k} = \"{k}\"")).collect();
    let manifest = ValidManifest::parse(
        &format!("[events.fuzzed]\nargs = {{ {} }}\n", declared.join(", ")),
        Path::new("fuzz/events.toml"),
    )
    .unwrap();
    let prepared = Prepared::new(manifest).unwrap();
    let registry = prepared.registry();
    let event = registry.event(registry.resolve("fuzzed").unwrap()).unwrap();
    let mut rng = Rng(0x5EED_0002);
    for _ in 0..iterations() {
        let text = random_text(&mut rng);
        let name = format!("a_{}", kinds[rng.below(kinds.len())]);
        must_not_panic("argument parsing", &text, || {
            let _ = ArgType::parse(&text);
            for ty in &types {
                let _ = ty.from_text(&text);
            }
            if let Ok(json) = serde_json::from_str::<serde_json::Value>(&text) {
                for ty in &types {
                    let _ = ty.from_json(&json);
                }
                if let Some(object) = json.as_object() {
                    let _ = event.json_args(object);
                }
            }
            let _ = event.text_args([(name.as_str(), text.as_str()), (text.as_str(), "x")]);
        });
    }
}
