//! Any bytes through the manifest parser, validator and diagnostics: no panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let path = std::path::Path::new("fuzz/events.toml");
    match Manifest::parse(text, path).and_then(Manifest::validate) {
        Ok(m) => {
            for plugin in &m.plugins {
                let _ = m.library_path(plugin);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
