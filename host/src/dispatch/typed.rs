//! Typed callbacks against the manifest: every argument a typed callback reads must be
//! declared by its event, with a type it can read, before the plugin runs.

use crate::load::Registered;
use crate::manifest::schema::{ArgType, Kind, Schema};
use crate::suggest::did_you_mean;

/// Why a callback's reads do not fit its event: one sentence naming the argument and the
/// event's declared arguments.
pub(crate) fn mismatch(registration: &Registered, schema: &Schema) -> Option<String> {
    let reads = registration.reads.as_ref()?;
    let event = &registration.event;
    let declared: Vec<&str> = schema.names.iter().map(|n| n.as_str()).collect();
    for (name, kind) in reads {
        let Some(index) = declared.iter().position(|d| d == name) else {
            let list = if declared.is_empty() {
                "no arguments".to_owned()
            } else {
                declared.join(", ")
            };
            return Some(format!(
                "reads `{name}`, but `{event}` declares {list}{}",
                did_you_mean(name, declared.iter().copied())
            ));
        };
        // A type this host does not know (from a newer SDK) is not checked.
        let Ok(read) = ArgType::parse(kind) else {
            continue;
        };
        let have = schema.types[index];
        if !can_read(have.kind, read.kind) {
            return Some(format!(
                "reads `{name}` as {}, but `{event}` declares it {}",
                read.kind, have.kind
            ));
        }
        if have.optional && !read.optional && read.kind != Kind::Any {
            return Some(format!(
                "reads `{name}` as required, but `{event}` declares it optional (`{have}`); make the field an `Option` or give it `#[serde(default)]`"
            ));
        }
    }
    None
}

/// Whether a field read as `read` accepts every value an argument declared `declared`
/// holds. `any` on either side is not checked: the values are only known at run time.
fn can_read(declared: Kind, read: Kind) -> bool {
    declared == read
        || read == Kind::Any
        || declared == Kind::Any
        || (declared == Kind::Int && read == Kind::Float)
        || (declared == Kind::Bytes && read == Kind::List)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema(args: &[(&str, &str)]) -> Schema {
        let mut schema = Schema::default();
        for (name, ty) in args {
            schema.names.push((*name).into());
            schema.types.push(ArgType::parse(ty).unwrap());
        }
        schema
    }

    fn reads(pairs: &[(&str, &str)]) -> Registered {
        Registered {
            event: "user_joined".into(),
            callback: "joined".into(),
            priority: 0,
            reads: Some(
                pairs
                    .iter()
                    .map(|(a, b)| (a.to_string(), b.to_string()))
                    .collect(),
            ),
            id: 0,
        }
    }

    #[test]
    fn names_types_and_optionality_are_checked() {
        let joined = schema(&[("name", "string"), ("email", "string"), ("age", "int?")]);
        assert_eq!(
            mismatch(&reads(&[("name", "string"), ("age", "float?")]), &joined),
            None
        );
        assert_eq!(
            mismatch(&reads(&[("emial", "string")]), &joined).unwrap(),
            "reads `emial`, but `user_joined` declares name, email, age (did you mean `email`?)"
        );
        assert_eq!(
            mismatch(&reads(&[("name", "int")]), &joined).unwrap(),
            "reads `name` as int, but `user_joined` declares it string"
        );
        assert!(mismatch(&reads(&[("age", "int")]), &joined)
            .unwrap()
            .contains("declares it optional (`int?`)"));
        assert_eq!(mismatch(&reads(&[("age", "any")]), &joined), None);
        assert_eq!(mismatch(&reads(&[("name", "newkind")]), &joined), None);
        let mut dynamic = reads(&[]);
        dynamic.reads = None;
        assert_eq!(mismatch(&dynamic, &schema(&[])), None);
        assert!(mismatch(&reads(&[("x", "any")]), &schema(&[]))
            .unwrap()
            .contains("declares no arguments"));
    }
}
