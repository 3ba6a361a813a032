//! The binary form of a message's parts: integers little-endian, text and lists with
//! their lengths first, values tagged by kind (bytes stay bytes, floats keep their bits)
//! and nested no deeper than the host accepts anywhere else.

use switchboard_plugin_api::{Entry, Error as PluginError, Value, ValueView};

use super::{CallRef, WireCall, WireError, MAX_VALUE_DEPTH};

/// Writes a message's parts.
#[derive(Default)]
pub(super) struct Writer(pub(super) Vec<u8>);

impl Writer {
    pub(super) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(super) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(super) fn str(&mut self, v: &str) {
        self.u32(v.len() as u32);
        self.0.extend_from_slice(v.as_bytes());
    }

    pub(super) fn call(&mut self, call: &CallRef<'_>) {
        self.u32(call.callback);
        self.u64(call.request);
        self.str(call.event_id);
        self.str(call.event);
        let count = call.names.len().min(call.values.len());
        self.u32(count as u32);
        for (index, value) in call.values[..count].iter().enumerate() {
            self.str(call.names.get(index));
            self.value(value);
        }
    }

    pub(super) fn strings(&mut self, v: &[String]) {
        self.u32(v.len() as u32);
        for s in v {
            self.str(s);
        }
    }

    pub(super) fn pairs(&mut self, v: &[(String, String)]) {
        self.u32(v.len() as u32);
        for (a, b) in v {
            self.str(a);
            self.str(b);
        }
    }

    pub(super) fn value(&mut self, v: &Value<'_>) {
        match v.view() {
            ValueView::Null => self.u8(0),
            ValueView::Bool(b) => {
                self.u8(1);
                self.u8(u8::from(b));
            }
            ValueView::Int(i) => {
                self.u8(2);
                self.u64(i as u64);
            }
            ValueView::Float(f) => {
                self.u8(3);
                self.u64(f.to_bits());
            }
            ValueView::Str(s) => {
                self.u8(4);
                self.str(s);
            }
            ValueView::Bytes(b) => {
                self.u8(5);
                self.u32(b.len() as u32);
                self.0.extend_from_slice(b);
            }
            ValueView::List(items) => {
                self.u8(6);
                self.u32(items.len() as u32);
                for item in items {
                    self.value(item);
                }
            }
            ValueView::Map(entries) => {
                self.u8(7);
                self.u32(entries.len() as u32);
                for entry in entries {
                    self.str(entry.key());
                    self.value(entry.value());
                }
            }
        }
    }

    pub(super) fn error(&mut self, e: &PluginError) {
        self.str(e.message());
        match e.help() {
            Some(help) => {
                self.u8(1);
                self.str(help);
            }
            None => self.u8(0),
        }
        self.str(e.kind_name());
    }

    pub(super) fn result(&mut self, r: &Result<Value<'static>, PluginError>) {
        match r {
            Ok(value) => {
                self.u8(0);
                self.value(value);
            }
            Err(error) => {
                self.u8(1);
                self.error(error);
            }
        }
    }
}

/// Reads a message's parts, each bounded by what is left of the frame.
pub(super) struct Reader<'b>(pub(super) &'b [u8]);

impl Reader<'_> {
    pub(super) fn take(&mut self, n: usize) -> Result<&[u8], WireError> {
        if self.0.len() < n {
            return Err(WireError::Broken("a message shorter than it says".into()));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(super) fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.take(1)?[0])
    }

    pub(super) fn u32(&mut self) -> Result<u32, WireError> {
        let mut bytes = [0u8; 4];
        bytes.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(bytes))
    }

    pub(super) fn u64(&mut self) -> Result<u64, WireError> {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(bytes))
    }

    /// A count of items, each at least one byte: never more than the bytes left, so a
    /// forged count cannot make the reader allocate more than the frame.
    pub(super) fn count(&mut self) -> Result<usize, WireError> {
        let count = self.u32()? as usize;
        if count > self.0.len() {
            return Err(WireError::Broken(format!(
                "a count of {count} with {} bytes left",
                self.0.len()
            )));
        }
        Ok(count)
    }

    pub(super) fn string(&mut self) -> Result<String, WireError> {
        let len = self.u32()? as usize;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| WireError::Broken("text that is not UTF-8".into()))
    }

    pub(super) fn call(&mut self) -> Result<WireCall, WireError> {
        let callback = self.u32()?;
        let request = self.u64()?;
        let event_id = self.string()?;
        let event = self.string()?;
        let count = self.count()?;
        let mut names = Vec::with_capacity(count);
        let mut values = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(self.string()?);
            values.push(self.value(0)?);
        }
        Ok(WireCall {
            callback,
            request,
            event_id,
            event,
            names,
            values,
        })
    }

    pub(super) fn strings(&mut self) -> Result<Vec<String>, WireError> {
        let count = self.count()?;
        (0..count).map(|_| self.string()).collect()
    }

    pub(super) fn pairs(&mut self) -> Result<Vec<(String, String)>, WireError> {
        let count = self.count()?;
        (0..count)
            .map(|_| Ok((self.string()?, self.string()?)))
            .collect()
    }

    pub(super) fn value(&mut self, depth: usize) -> Result<Value<'static>, WireError> {
        if depth > MAX_VALUE_DEPTH {
            return Err(WireError::Broken(format!(
                "a value nested deeper than {MAX_VALUE_DEPTH} levels"
            )));
        }
        Ok(match self.u8()? {
            0 => Value::NULL,
            1 => Value::from(self.u8()? != 0),
            2 => Value::from(self.u64()? as i64),
            3 => Value::from(f64::from_bits(self.u64()?)),
            4 => Value::from(self.string()?),
            5 => {
                let len = self.u32()? as usize;
                Value::bytes(self.take(len)?.to_vec())
            }
            6 => {
                let count = self.count()?;
                let mut items = Vec::with_capacity(count);
                for _ in 0..count {
                    items.push(self.value(depth + 1)?);
                }
                Value::list(items)
            }
            7 => {
                let count = self.count()?;
                let mut entries = Vec::with_capacity(count);
                for _ in 0..count {
                    let key = self.string()?;
                    entries.push(Entry::new(key, self.value(depth + 1)?));
                }
                Value::map_from_entries(entries)
            }
            other => return Err(WireError::Broken(format!("unknown value kind {other}"))),
        })
    }

    pub(super) fn error(&mut self) -> Result<PluginError, WireError> {
        let message = self.string()?;
        let help = match self.u8()? {
            0 => None,
            _ => Some(self.string()?),
        };
        let mut error = match self.string()?.as_str() {
            "panic" => PluginError::panicked(message),
            "skipped" => PluginError::skipped(message),
            "crashed" => PluginError::crashed(message),
            "timed_out" => PluginError::timed_out(message),
            _ => PluginError::new(message),
        };
        if let Some(help) = help {
            error = error.with_help(help);
        }
        Ok(error)
    }

    pub(super) fn result(&mut self) -> Result<Result<Value<'static>, PluginError>, WireError> {
        Ok(match self.u8()? {
            0 => Ok(self.value(0)?),
            _ => Err(self.error()?),
        })
    }

    pub(super) fn end(&self) -> Result<(), WireError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(WireError::Broken(format!(
                "{} bytes after the message",
                self.0.len()
            )))
        }
    }
}
