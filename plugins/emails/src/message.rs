//! The welcome message: real RFC 5322 headers and a text body, built with lettre.

use lettre::message::{header::ContentType, Mailbox};
use lettre::Message;

/// Why a message could not be built.
#[derive(Debug)]
pub struct MessageError(pub String);

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for MessageError {}

/// The welcome message for `name <email>`, from `from`.
pub fn welcome(from: &str, name: &str, email: &str) -> Result<Message, MessageError> {
    let from: Mailbox = from
        .parse()
        .map_err(|e| MessageError(format!("invalid `from` address `{from}`: {e}")))?;
    let to = Mailbox::new(
        Some(name.to_owned()),
        email
            .parse()
            .map_err(|e| MessageError(format!("invalid email address `{email}`: {e}")))?,
    );
    Message::builder()
        .from(from)
        .to(to)
        .subject(format!("Welcome, {name}!"))
        .date_now()
        .message_id(None)
        .header(ContentType::TEXT_PLAIN)
        .body(body(name))
        .map_err(|e| MessageError(format!("cannot build the message: {e}")))
}

fn body(name: &str) -> String {
    format!("Hello {name},\n\nthank you for signing up. Your account is ready.\n\nSee you soon!\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_headers_and_a_personal_body() {
        let message = welcome("Team <team@example.com>", "Ann", "ann@example.com").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(text.contains("From: Team <team@example.com>"), "{text}");
        assert!(text.contains("To: Ann <ann@example.com>"), "{text}");
        assert!(text.contains("Subject: Welcome, Ann!"), "{text}");
        assert!(text.contains("Date: "), "{text}");
        assert!(text.contains("Hello Ann,"), "{text}");
    }

    #[test]
    fn refuses_an_invalid_address() {
        let err = welcome("team@example.com", "Ann", "not an address").unwrap_err();
        assert!(
            err.0.starts_with("invalid email address `not an address`"),
            "{err}"
        );
    }
}
