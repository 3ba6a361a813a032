//! The binary interface across plugin-api versions.

#[test]
fn placeholder() {}
