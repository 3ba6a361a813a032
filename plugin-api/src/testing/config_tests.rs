//! How the test host hands a plugin its config: unknown keys, defaults, wrong types.

use super::*;
use serde::Deserialize;

/// A config type that forgot `deny_unknown_fields`, with a default.
#[derive(Deserialize)]
struct Loose {
    #[serde(default = "red")]
    color: String,
}

fn red() -> String {
    "red".to_owned()
}

struct Painter(String);

impl Plugin for Painter {
    type Config = Loose;
    fn init(config: Loose, _: &Host<'_>) -> Result<Self> {
        Ok(Painter(config.color))
    }
    fn register(_: &mut Callbacks<Self>) {}
}

#[test]
fn an_unknown_config_key_is_refused_even_without_deny_unknown_fields() {
    let host = TestHost::new();
    let error = host
        .start::<Painter>(serde_json::json!({"colour": "blue"}))
        .err()
        .expect("a misspelt key must not fall back to the default");
    assert_eq!(error.message(), "invalid config: unknown key `colour`");
    assert!(error.help().is_some_and(|h| h.contains("spelling")));
    let painter = host.start::<Painter>(serde_json::json!({})).unwrap();
    assert_eq!(painter.plugin().0, "red", "defaults still apply");
}
