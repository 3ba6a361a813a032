//! Any text through the argument parsers of every declared type: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::manifest::schema::ArgType;

const TYPES: &[&str] = &[
    "string", "int", "float", "bool", "bytes", "list", "map", "any", "string?", "int?",
    "float?", "bool?", "bytes?", "list?", "map?", "any?",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = ArgType::parse(text);
    let json = serde_json::from_str::<serde_json::Value>(text).ok();
    for ty in TYPES {
        let ty = ArgType::parse(ty).expect("a valid type");
        let _ = ty.from_text(text);
        if let Some(json) = &json {
            let _ = ty.from_json(json);
        }
    }
});
