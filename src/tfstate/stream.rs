//! Streaming reads of a state document: what tfsync needs from it (format
//! version, serial, lineage, the counts `status` shows, the root outputs,
//! a digest of the whole JSON value) in one pass of the deserializer,
//! without building the document. Memory stays that of the fields kept
//! (and, for the digest, of the keys of one object at a time), whatever
//! the size of the state: a 200 MB state is read in a few MB.
//!
//! Every reader here agrees with what `serde_json::Value` makes of the same
//! bytes (the tests hold them to it): the same documents are refused with
//! the same errors, a duplicated key counts once and its last value wins,
//! objects compare without regard to key order.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::io::Read;

/// A top-level scalar as `Value` would hold it, reduced to what the checks
/// ask of it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Scalar {
    /// Absent.
    #[default]
    Missing,
    Null,
    /// A non-negative integer below 2^64 (`Value::as_u64` is `Some`).
    U64(u64),
    Str(String),
    /// Anything else (negative, fractional, bool, array, object).
    Other,
}

impl Scalar {
    pub fn is_missing(&self) -> bool {
        matches!(self, Scalar::Missing)
    }
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Scalar::U64(n) => Some(*n),
            _ => None,
        }
    }
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Scalar::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// What one pass over a document collects. Counts follow `Value`: an array
/// counts its elements, an object its distinct keys.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Top {
    pub version: Scalar,
    pub serial: Scalar,
    pub lineage: Scalar,
    pub terraform_version: Scalar,
    pub encryption_version: Scalar,
    pub encrypted_data: bool,
    /// Format 4: elements of `resources` when it is an array.
    pub resources: Option<usize>,
    /// Format 4: keys of `outputs` when it is an object.
    pub outputs: Option<usize>,
    /// Format 3: per module (objects only), its resource and output counts.
    pub modules: Option<Vec<(Option<usize>, Option<usize>)>>,
}

/// The top-level value: an object with what was collected, or not an object.
#[derive(Debug, Clone, PartialEq)]
pub enum Doc<T> {
    Object(T),
    NotObject,
}

/// Which root outputs to keep while reading (for `tfsync outputs`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Outputs {
    /// Format 4: the `outputs` value as it is.
    pub v4: Option<Value>,
    /// Format 3: per module (objects only), its `path` and `outputs` values.
    pub modules: Option<Vec<(Value, Value)>>,
}

/// Read the top-level fields of a whole document (every byte is parsed and
/// checked, nothing kept but the fields).
pub fn top(bytes: &[u8]) -> Result<Doc<Top>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = TopSeed { outputs: None }.deserialize(&mut de)?;
    de.end()?;
    Ok(doc.map(|(t, _)| t))
}

/// [`top`] over a reader (a state spooled to a file).
pub fn top_from_reader(r: impl Read) -> Result<Doc<Top>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let doc = TopSeed { outputs: None }.deserialize(&mut de)?;
    de.end()?;
    Ok(doc.map(|(t, _)| t))
}

/// [`top`], keeping the root outputs as well.
pub fn top_and_outputs(bytes: &[u8]) -> Result<Doc<(Top, Outputs)>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let doc = TopSeed {
        outputs: Some(Outputs::default()),
    }
    .deserialize(&mut de)?;
    de.end()?;
    Ok(doc.map(|(t, o)| (t, o.unwrap_or_default())))
}

impl<T> Doc<T> {
    fn map<U>(self, f: impl FnOnce(T) -> U) -> Doc<U> {
        match self {
            Doc::Object(t) => Doc::Object(f(t)),
            Doc::NotObject => Doc::NotObject,
        }
    }
}

/// SHA-256 of a document's JSON value, such that two documents have the
/// same digest exactly when `serde_json::Value` finds them equal: key order
/// and whitespace do not matter, a duplicated key's last value counts,
/// `1` and `1.0` differ, `-0.0` and `0.0` do not. `None` for bytes that are
/// not one JSON document.
pub fn digest(bytes: &[u8]) -> Option<[u8; 32]> {
    digest_with(bytes, None).ok()
}

/// [`digest`] over a reader.
pub fn digest_from_reader(r: impl Read) -> Option<[u8; 32]> {
    let mut de = serde_json::Deserializer::from_reader(r);
    let mut h = Sha256::new();
    ValueSeed {
        h: &mut h,
        top_serial: None,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(h.finalize().into())
}

/// [`digest`] of the document with its top-level `serial` set to `serial`
/// (inserted when missing); an error when it is not a JSON object.
pub fn digest_with(bytes: &[u8], serial: Option<u64>) -> Result<[u8; 32], String> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let mut h = Sha256::new();
    let kind = ValueSeed {
        h: &mut h,
        top_serial: serial,
    }
    .deserialize(&mut de)
    .map_err(|e| e.to_string())?;
    de.end().map_err(|e| e.to_string())?;
    if serial.is_some() && kind != Kind::Object {
        return Err("not a JSON object".into());
    }
    Ok(h.finalize().into())
}

/// The top-level fields found in the first bytes of a document (`head`,
/// cut anywhere): those whose value ended before the cut. `None` when the
/// head is not the start of a JSON object (a syntax error before the cut,
/// or another value). Counts are not collected.
pub fn head(head: &[u8]) -> Option<Top> {
    match head_pass(head)? {
        (t, true) => Some(t),
        // Cut: a number right at the cut may be cut too (`12` of `123`), so
        // only what ends at the last comma counts.
        (first, false) => {
            let end = head.iter().rposition(|&b| b == b',');
            let mut t = match end {
                Some(end) => head_pass(&head[..=end])?.0,
                None => Top::default(),
            };
            // An `encrypted_data` key seen anywhere in the head counts.
            t.encrypted_data |= first.encrypted_data;
            Some(t)
        }
    }
}

/// The fields of a head, and whether it was the whole document.
fn head_pass(head: &[u8]) -> Option<(Top, bool)> {
    let mut seen = Head::default();
    let mut de = serde_json::Deserializer::from_slice(head);
    let whole = match HeadSeed(&mut seen).deserialize(&mut de) {
        Ok(()) => {
            de.end().ok()?;
            true
        }
        Err(e) if e.is_eof() => false,
        Err(_) => return None,
    };
    seen.object.then_some((seen.top, whole))
}

#[derive(Default)]
struct Head {
    /// The document is an object (its `{` was read).
    object: bool,
    top: Top,
}

struct HeadSeed<'a>(&'a mut Head);

impl<'de> DeserializeSeed<'de> for HeadSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for HeadSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.0.object = true;
        let t = &mut self.0.top;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => t.version = map.next_value_seed(ScalarSeed)?,
                "serial" => t.serial = map.next_value_seed(ScalarSeed)?,
                "lineage" => t.lineage = map.next_value_seed(ScalarSeed)?,
                "terraform_version" => t.terraform_version = map.next_value_seed(ScalarSeed)?,
                "encrypted_data" => {
                    // Seen, whether or not its value ends before the cut.
                    t.encrypted_data = true;
                    map.next_value::<IgnoredAny>()?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

// ---- top-level fields ----

struct TopSeed {
    outputs: Option<Outputs>,
}

impl<'de> DeserializeSeed<'de> for TopSeed {
    type Value = Doc<(Top, Option<Outputs>)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

macro_rules! not_object_scalars {
    ($($f:ident: $t:ty),*) => {$(
        fn $f<E: de::Error>(self, _: $t) -> Result<Self::Value, E> {
            Ok(Doc::NotObject)
        }
    )*};
}

impl<'de> Visitor<'de> for TopSeed {
    type Value = Doc<(Top, Option<Outputs>)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    not_object_scalars!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str);
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Doc::NotObject)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Doc::NotObject)
    }
    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut t = Top::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => t.version = map.next_value_seed(ScalarSeed)?,
                "serial" => t.serial = map.next_value_seed(ScalarSeed)?,
                "lineage" => t.lineage = map.next_value_seed(ScalarSeed)?,
                "terraform_version" => t.terraform_version = map.next_value_seed(ScalarSeed)?,
                "encryption_version" => t.encryption_version = map.next_value_seed(ScalarSeed)?,
                "encrypted_data" => {
                    map.next_value::<IgnoredAny>()?;
                    t.encrypted_data = true;
                }
                "resources" => t.resources = map.next_value_seed(CountSeed::Array)?,
                "outputs" => match &mut self.outputs {
                    Some(o) => {
                        let v: Value = map.next_value()?;
                        t.outputs = v.as_object().map(|m| m.len());
                        o.v4 = Some(v);
                    }
                    None => t.outputs = map.next_value_seed(CountSeed::Object)?,
                },
                "modules" => {
                    let keep = self.outputs.is_some();
                    let (counts, kept) = map.next_value_seed(ModulesSeed { keep })?;
                    t.modules = counts;
                    if let Some(o) = &mut self.outputs {
                        o.modules = kept;
                    }
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Doc::Object((t, self.outputs)))
    }
}

struct ScalarSeed;

impl<'de> DeserializeSeed<'de> for ScalarSeed {
    type Value = Scalar;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ScalarSeed {
    type Value = Scalar;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::U64(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(u64::try_from(v).map_or(Scalar::Other, Scalar::U64))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar, E> {
        Ok(Scalar::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Scalar::Other)
    }
}

/// The length of an array (`Array`) or the distinct keys of an object
/// (`Object`); `None` for any other value. Elements are skipped unread.
#[derive(Clone, Copy)]
enum CountSeed {
    Array,
    Object,
}

impl<'de> DeserializeSeed<'de> for CountSeed {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for CountSeed {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Option<usize>, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Option<usize>, A::Error> {
        let mut n = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            n += 1;
        }
        Ok(matches!(self, CountSeed::Array).then_some(n))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<usize>, A::Error> {
        let mut keys = HashSet::new();
        while let Some(k) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.insert(k);
        }
        Ok(matches!(self, CountSeed::Object).then_some(keys.len()))
    }
}

/// Format 3's `modules`: per module object, its counts (and, with `keep`,
/// its `path` and `outputs`).
struct ModulesSeed {
    keep: bool,
}

type Modules = (
    Option<Vec<(Option<usize>, Option<usize>)>>,
    Option<Vec<(Value, Value)>>,
);

impl<'de> DeserializeSeed<'de> for ModulesSeed {
    type Value = Modules;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Modules, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ModulesSeed {
    type Value = Modules;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Modules, E> {
        Ok((None, None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Modules, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok((None, None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Modules, A::Error> {
        let mut counts = Vec::new();
        let mut kept = Vec::new();
        while let Some(m) = seq.next_element_seed(ModuleSeed { keep: self.keep })? {
            match m {
                Some((c, k)) => {
                    counts.push(c);
                    kept.extend(k);
                }
                // Not a module, but `modules[0]` all the same (its outputs:
                // none).
                None if self.keep => kept.push((Value::Null, Value::Null)),
                None => {}
            }
        }
        Ok((Some(counts), self.keep.then_some(kept)))
    }
}

struct ModuleSeed {
    keep: bool,
}

type Module = Option<((Option<usize>, Option<usize>), Option<(Value, Value)>)>;

impl<'de> DeserializeSeed<'de> for ModuleSeed {
    type Value = Module;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Module, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ModuleSeed {
    type Value = Module;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Module, E> {
        Ok(None)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Module, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Module, A::Error> {
        let (mut resources, mut outputs) = (None, None);
        let (mut path, mut outs) = (Value::Null, Value::Null);
        while let Some(k) = map.next_key::<String>()? {
            match k.as_str() {
                "resources" => resources = map.next_value_seed(CountSeed::Object)?,
                "outputs" if self.keep => {
                    outs = map.next_value()?;
                    outputs = outs.as_object().map(|m| m.len());
                }
                "outputs" => outputs = map.next_value_seed(CountSeed::Object)?,
                "path" if self.keep => path = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Some((
            (resources, outputs),
            self.keep.then_some((path, outs)),
        )))
    }
}

// ---- digest ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Object,
    Other,
}

/// Feeds one value into `h`, self-delimiting (a type tag, lengths), so the
/// bytes fed identify the value. Objects feed their members sorted by key,
/// each value by its own digest.
struct ValueSeed<'h> {
    h: &'h mut Sha256,
    /// At the top level: the serial to put in place of the document's.
    top_serial: Option<u64>,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Kind;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Kind, D::Error> {
        d.deserialize_any(self)
    }
}

fn feed_u64(h: &mut Sha256, tag: u8, v: u64) {
    h.update([tag]);
    h.update(v.to_le_bytes());
}

fn feed_str(h: &mut Sha256, tag: u8, s: &str) {
    h.update([tag]);
    h.update((s.len() as u64).to_le_bytes());
    h.update(s.as_bytes());
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Kind;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Kind, E> {
        self.h.update(b"n");
        Ok(Kind::Other)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Kind, E> {
        self.h.update(if v { b"t" } else { b"f" });
        Ok(Kind::Other)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Kind, E> {
        feed_u64(self.h, b'u', v);
        Ok(Kind::Other)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Kind, E> {
        // As `Value`: a non-negative integer is a PosInt whatever its path.
        match u64::try_from(v) {
            Ok(u) => feed_u64(self.h, b'u', u),
            Err(_) => feed_u64(self.h, b'i', v as u64),
        }
        Ok(Kind::Other)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Kind, E> {
        // `==` on floats: -0.0 equals 0.0 (JSON has no NaN).
        let v = if v == 0.0 { 0.0 } else { v };
        feed_u64(self.h, b'd', v.to_bits());
        Ok(Kind::Other)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Kind, E> {
        feed_str(self.h, b's', v);
        Ok(Kind::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Kind, A::Error> {
        self.h.update(b"[");
        while seq
            .next_element_seed(ValueSeed {
                h: &mut *self.h,
                top_serial: None,
            })?
            .is_some()
        {}
        self.h.update(b"]");
        Ok(Kind::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Kind, A::Error> {
        let mut members: BTreeMap<String, [u8; 32]> = BTreeMap::new();
        while let Some(k) = map.next_key::<String>()? {
            let mut h = Sha256::new();
            if self.top_serial.is_some() && k == "serial" {
                map.next_value::<IgnoredAny>()?;
            } else {
                map.next_value_seed(ValueSeed {
                    h: &mut h,
                    top_serial: None,
                })?;
            }
            members.insert(k, h.finalize().into());
        }
        if let Some(serial) = self.top_serial {
            let mut h = Sha256::new();
            feed_u64(&mut h, b'u', serial);
            members.insert("serial".into(), h.finalize().into());
        }
        self.h.update(b"{");
        self.h.update((members.len() as u64).to_le_bytes());
        for (k, d) in &members {
            feed_str(self.h, b'k', k);
            self.h.update(d);
        }
        self.h.update(b"}");
        Ok(Kind::Object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Documents whose pairs `Value` finds equal or not; the digest must
    /// agree on every pair.
    const DOCS: &[&str] = &[
        r#"{"a":1,"b":[1,2,{"c":null}]}"#,
        r#"{"b":[1,2,{"c":null}],"a":1}"#,
        r#"{ "a" : 1 , "b" : [ 1 , 2 , { "c" : null } ] }"#,
        r#"{"a":1,"b":[2,1,{"c":null}]}"#,
        r#"{"a":1.0,"b":[1,2,{"c":null}]}"#,
        r#"{"a":1,"a":2}"#,
        r#"{"a":2}"#,
        r#"{"a":"\u003c"}"#,
        r#"{"a":"<"}"#,
        r#"{"a":-0.0}"#,
        r#"{"a":0.0}"#,
        r#"{"a":-1}"#,
        r#"{"a":18446744073709551615}"#,
        r#"{"a":true}"#,
        r#"{"a":"true"}"#,
        r#"{"a":[]}"#,
        r#"{"a":{}}"#,
        r#"{"a":[[]]}"#,
        r#"{"a":[],"b":[]}"#,
        r#"{"ab":[]}"#,
        r#"[1,2]"#,
        r#"[[1],2]"#,
        r#""x""#,
        "null",
    ];

    #[test]
    fn digest_agrees_with_value_equality() {
        for a in DOCS {
            for b in DOCS {
                let va: Value = serde_json::from_str(a).expect("a");
                let vb: Value = serde_json::from_str(b).expect("b");
                assert_eq!(
                    digest(a.as_bytes()) == digest(b.as_bytes()),
                    va == vb,
                    "{a} vs {b}"
                );
                assert_eq!(
                    digest_from_reader(a.as_bytes()),
                    digest(a.as_bytes()),
                    "{a}"
                );
            }
        }
        assert_eq!(digest(b"{"), None);
        assert_eq!(digest(b"{} x"), None);
    }

    #[test]
    fn digest_with_a_serial_is_that_of_the_document_with_it() {
        for (doc, serial) in [
            (r#"{"version":4,"serial":3,"lineage":"x"}"#, 9),
            (r#"{"serial":3,"serial":4}"#, 1),
            (r#"{"version":4}"#, 2),
        ] {
            let mut v: Value = serde_json::from_str(doc).expect("doc");
            v["serial"] = Value::from(serial);
            let want = digest(v.to_string().as_bytes());
            assert_eq!(
                digest_with(doc.as_bytes(), Some(serial)).ok(),
                want,
                "{doc}"
            );
        }
        assert!(digest_with(b"[1]", Some(1)).is_err());
    }

    #[test]
    fn the_head_gives_the_fields_that_end_before_the_cut() {
        let doc = br#"{"version":4,"terraform_version":"1.11.0","serial":7,"lineage":"abc","outputs":{}}"#;
        for cut in 0..doc.len() {
            let got = head(&doc[..cut]);
            let text = String::from_utf8_lossy(&doc[..cut]);
            if cut == 0 {
                assert_eq!(got, None);
                continue;
            }
            let t = got.unwrap_or_else(|| panic!("{text}"));
            // A field counts once a comma follows its value (a number at the
            // cut may itself be cut).
            let has = |f: &str| text.contains(f);
            assert_eq!(t.version.is_missing(), !has(r#""version":4,"#), "{text}");
            assert_eq!(t.serial.is_missing(), !has(r#""serial":7,"#), "{text}");
            assert_eq!(
                t.lineage.is_missing(),
                !has(r#""lineage":"abc","#),
                "{text}"
            );
        }
        assert_eq!(head(br#"[{"version":4"#), None);
        assert_eq!(head(br#"{"version":4,,"#), None, "a syntax error");
        assert_eq!(head(br#"{"version":4} x"#), None, "trailing bytes");
        assert!(head(br#"{"encrypted_data":"AAA"#).is_some_and(|t| t.encrypted_data));
        assert!(
            head(br#"{"version":4,"serial":123"#).is_some_and(|t| t.serial.is_missing()),
            "a number at the cut is not read"
        );
        assert!(
            head(doc).is_some_and(|t| t.serial == Scalar::U64(7)),
            "whole"
        );
    }

    #[test]
    fn top_counts_as_value_does() {
        let doc = br#"{"version":4,"serial":7,"lineage":"L","terraform_version":"1.11.0",
            "outputs":{"a":{"value":1},"b":{"value":2},"a":{"value":3}},
            "resources":[{"x":1},{"y":[1,2]}],"serial":8}"#;
        let Ok(Doc::Object(t)) = top(doc) else {
            panic!("object")
        };
        assert_eq!(t.version, Scalar::U64(4));
        assert_eq!(t.serial, Scalar::U64(8), "the last duplicate wins");
        assert_eq!(t.lineage, Scalar::Str("L".into()));
        assert_eq!((t.resources, t.outputs), (Some(2), Some(2)));
        assert_eq!(top_from_reader(&doc[..]).ok(), Some(Doc::Object(t)));
        assert_eq!(top(b"[1,{}]").ok(), Some(Doc::NotObject));
        assert!(top(b"[1,{}").is_err());
        assert!(top(b"{} {}").is_err());
        let v3 = br#"{"version":3,"serial":1,"modules":[{"path":["root"],"resources":{"a":{},"b":{}},"outputs":{"o":{"value":1}}},7,{"resources":[]}]}"#;
        let Ok(Doc::Object((t, o))) = top_and_outputs(v3) else {
            panic!("object")
        };
        assert_eq!(
            t.modules,
            Some(vec![(Some(2), Some(1)), (None, None)]),
            "non-object modules are not modules"
        );
        let kept = o.modules.expect("kept");
        assert_eq!(kept[0].0, serde_json::json!(["root"]));
        assert_eq!(kept[0].1, serde_json::json!({"o": {"value": 1}}));
    }
}
