//! The arguments a callback receives.

use crate::abi::ArgsRaw;
use crate::error::{Error, Result};
use crate::value::Value;

/// The arguments of the event being dispatched, by the names the manifest declares.
///
/// Every callback of one emit reads the same borrowed arguments: nothing is copied per
/// callback. Read one argument with [`Args::str`], [`Args::i64`] and friends, or the whole
/// payload into your own serde type with [`Args::parse`].
///
/// ```
/// use switchboard_plugin_api::{ArgsBuf, Value};
///
/// let buf = ArgsBuf::new("user_joined", [("name", "Ann"), ("email", "ann@example.com")]);
/// let args = buf.args();
/// assert_eq!(args.str("name")?, "Ann");
///
/// #[derive(serde::Deserialize)]
/// struct User { name: String, email: String }
/// let user: User = args.parse()?;
/// assert_eq!(user.email, "ann@example.com");
/// # Ok::<(), switchboard_plugin_api::Error>(())
/// ```
#[repr(transparent)]
#[derive(Clone, Copy)]
pub struct Args<'a> {
    raw: ArgsRaw<'a>,
}

impl<'a> Args<'a> {
    #[doc(hidden)]
    pub fn new(
        event: &'a str,
        names: &'a [abi_stable::std_types::RString],
        values: &'a [Value<'a>],
    ) -> Self {
        Args {
            raw: ArgsRaw {
                event: event.into(),
                names: names.into(),
                values: values.into(),
                request: 0,
            },
        }
    }

    #[doc(hidden)]
    pub fn from_raw(raw: ArgsRaw<'a>) -> Self {
        Args { raw }
    }

    #[doc(hidden)]
    pub fn into_raw(self) -> ArgsRaw<'a> {
        self.raw
    }

    /// The argument names, in declared order.
    #[inline(always)]
    pub(crate) fn names(&self) -> &'a [abi_stable::std_types::RString] {
        self.raw.names.as_slice()
    }

    /// The argument values, in declared order.
    #[inline(always)]
    pub(crate) fn values(&self) -> &'a [Value<'a>] {
        self.raw.values.as_slice()
    }

    /// The name of the event being dispatched.
    pub fn event(&self) -> &'a str {
        self.raw.event.as_str()
    }

    /// The argument called `name`, or `None` when the event declares no such argument.
    /// A declared optional argument that the caller left out is `Some(null)`.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Option<&'a Value<'a>> {
        let index = self
            .raw
            .names
            .iter()
            .position(|n| same_name(n.as_bytes(), name.as_bytes()))?;
        self.raw.values.as_slice().get(index)
    }

    /// The argument called `name`; an error when the event has no such argument.
    #[inline(always)]
    pub fn value(&self, name: &str) -> Result<&'a Value<'a>> {
        match self.get(name) {
            Some(value) => Ok(value),
            None => Err(self.missing(name)),
        }
    }

    #[cold]
    #[inline(never)]
    fn missing(&self, name: &str) -> Error {
        Error::new(format!("event `{}` has no argument `{name}`", self.event())).with_help(format!(
            "declare it under [events.{}] args in the manifest",
            self.event()
        ))
    }

    /// The string argument called `name`.
    #[inline(always)]
    pub fn str(&self, name: &str) -> Result<&'a str> {
        let value = self.value(name)?;
        match value.as_str() {
            Some(text) => Ok(text),
            None => Err(self.wrong_kind(name, value, "string")),
        }
    }

    /// The integer argument called `name`.
    pub fn i64(&self, name: &str) -> Result<i64> {
        let value = self.value(name)?;
        value
            .as_i64()
            .ok_or_else(|| self.wrong_kind(name, value, "int"))
    }

    /// The number argument called `name` (a float, or an int widened to a float).
    pub fn f64(&self, name: &str) -> Result<f64> {
        let value = self.value(name)?;
        value
            .as_f64()
            .ok_or_else(|| self.wrong_kind(name, value, "float"))
    }

    /// The boolean argument called `name`.
    pub fn bool(&self, name: &str) -> Result<bool> {
        let value = self.value(name)?;
        value
            .as_bool()
            .ok_or_else(|| self.wrong_kind(name, value, "bool"))
    }

    /// All arguments as `(name, value)` pairs, in declared order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a Value<'a>)> + 'a {
        let names = self.raw.names.as_slice();
        let values = self.raw.values.as_slice();
        names.iter().map(|n| n.as_str()).zip(values)
    }

    /// The argument at `index` in declared order, with its name.
    pub(crate) fn pair(&self, index: usize) -> Option<(&'a str, &'a Value<'a>)> {
        let name = self.raw.names.as_slice().get(index)?;
        Some((name.as_str(), self.raw.values.as_slice().get(index)?))
    }

    /// The request id of this emit (0 when the host gives none): unique in the host
    /// process, for matching logs and, later, asynchronous results.
    pub fn request_id(&self) -> u64 {
        self.raw.request
    }

    /// The same arguments seen with a shorter lifetime (they are covariant).
    #[inline(always)]
    pub(crate) fn shorten<'s>(&'s self) -> &'s Args<'s> {
        self
    }

    /// The error for arguments that do not fit a callback's struct.
    #[cold]
    #[inline(never)]
    pub(crate) fn unfit(&self, error: impl std::fmt::Display) -> Error {
        Error::new(format!(
            "arguments of event `{}` do not fit: {error}",
            self.event()
        ))
        .with_help(format!(
            "compare the callback's argument struct with [events.{}] in the manifest",
            self.event()
        ))
    }

    /// Views the host's arguments as `Args` without copying them.
    #[inline(always)]
    pub(crate) fn from_raw_ref<'r>(raw: &'r ArgsRaw<'a>) -> &'r Args<'a> {
        // SAFETY: `Args` is `repr(transparent)` over `ArgsRaw`, so the two have the same
        // layout, and the returned reference borrows `raw` for the same lifetime.
        unsafe { &*std::ptr::from_ref(raw).cast::<Args<'a>>() }
    }

    #[cold]
    #[inline(never)]
    fn wrong_kind(&self, name: &str, value: &Value<'_>, expected: &str) -> Error {
        Error::new(format!(
            "argument `{name}` of event `{}` is {} {}, expected {expected}",
            self.event(),
            article(value.kind_name()),
            value.kind_name()
        ))
    }
}

/// Compares argument names byte by byte: they are short, and an inlined loop beats a call
/// to the C library's `memcmp` on the hot path of every callback.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

impl std::fmt::Debug for Args<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Owned arguments, for calling plugin code in tests (and for hosts that build payloads).
///
/// ```
/// use switchboard_plugin_api::{ArgsBuf, Value};
///
/// let buf = ArgsBuf::new("order_placed", [("id", Value::from(7)), ("paid", Value::from(true))]);
/// assert_eq!(buf.args().i64("id")?, 7);
/// assert!(buf.args().str("id").unwrap_err().message().contains("is an int, expected string"));
/// # Ok::<(), switchboard_plugin_api::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ArgsBuf {
    event: String,
    names: Vec<abi_stable::std_types::RString>,
    values: Vec<Value<'static>>,
}

impl ArgsBuf {
    /// Arguments for `event` from `(name, value)` pairs.
    pub fn new<K, V>(event: impl Into<String>, pairs: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: Into<Value<'static>>,
    {
        let (names, values) = pairs
            .into_iter()
            .map(|(k, v)| (k.as_ref().into(), v.into()))
            .unzip();
        ArgsBuf {
            event: event.into(),
            names,
            values,
        }
    }

    /// A borrowed view to pass to a callback.
    pub fn args(&self) -> Args<'_> {
        Args::new(&self.event, &self.names, &self.values)
    }
}
