//! What to write: "did you mean" hints for misspelled names, and the manifest text an
//! error tells the user to add.

/// ` (did you mean `x`?)` for the candidate nearest to `input`, or an empty string when
/// none is close enough to be a likely typo.
pub(crate) fn did_you_mean<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    nearest(input, candidates)
        .map(|name| format!(" (did you mean `{name}`?)"))
        .unwrap_or_default()
}

/// The candidate nearest to `input`, if it is close enough to be a likely typo.
pub(crate) fn nearest<'a>(
    input: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// The table header that declares event `name` in a manifest: `[events.user_joined]`,
/// or `[events."c.ping"]` for a name TOML must quote (a dot there would nest tables).
pub fn event_table(name: &str) -> String {
    let bare = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if bare {
        format!("[events.{name}]")
    } else {
        format!("[events.{}]", toml::Value::from(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_near_names() {
        assert_eq!(
            nearest("user_joind", ["user_joined", "user_lookup"]),
            Some("user_joined")
        );
        assert_eq!(nearest("zzz", ["user_joined"]), None);
        assert_eq!(did_you_mean("zzz", ["user_joined"]), "");
    }
}
