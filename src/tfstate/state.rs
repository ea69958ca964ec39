//! What a state says, read without rewriting it.
//!
//! A state is handled as opaque bytes: re-serialising would change them (Go
//! escapes `<`, `>`, `&`; serde does not). Only the fields a decision needs
//! are parsed: format version, serial, lineage, and the counts shown by
//! `status`.

use super::stream::{self, Doc, Scalar, Top};

/// The header of a Terraform state, or the fact that it is encrypted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateInfo {
    Plain(Summary),
    /// OpenTofu client-side encryption: serial and lineage are not readable.
    Encrypted {
        encryption_version: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub version: u64,
    pub terraform_version: Option<String>,
    pub serial: u64,
    pub lineage: String,
    pub resources: usize,
    pub outputs: usize,
}

impl Summary {
    /// Terraform's `State.Empty()`: nothing would be lost by overwriting it.
    pub fn is_empty(&self) -> bool {
        self.resources == 0 && self.outputs == 0
    }
}

/// Parse what tfsync needs from a state file. Accepts format versions 3 and
/// 4 with a string lineage and an integer serial, and OpenTofu-encrypted
/// states. One streaming pass ([`stream::top`]): the document is checked
/// whole but never built, so memory stays flat on large states.
pub fn parse(bytes: &[u8]) -> Result<StateInfo, String> {
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        return Err(bom());
    }
    info_of(stream::top(bytes).map_err(|e| format!("not valid JSON: {e}"))?)
}

/// [`parse`] over a reader (a state spooled to a file), same answers.
pub fn parse_reader(mut r: impl std::io::BufRead) -> Result<StateInfo, String> {
    if r.fill_buf()
        .map_err(|e| format!("cannot read it: {e}"))?
        .starts_with(b"\xEF\xBB\xBF")
    {
        return Err(bom());
    }
    info_of(stream::top_from_reader(r).map_err(|e| format!("not valid JSON: {e}"))?)
}

fn bom() -> String {
    "the file starts with a UTF-8 byte-order mark, which Terraform does not accept".into()
}

/// The rules of [`parse`] over the fields one pass collected.
fn info_of(doc: Doc<Top>) -> Result<StateInfo, String> {
    let Doc::Object(t) = doc else {
        return Err("not a JSON object".into());
    };
    if t.encrypted_data {
        return Ok(StateInfo::Encrypted {
            encryption_version: t
                .encryption_version
                .as_str()
                .unwrap_or("unknown")
                .to_string(),
        });
    }
    if t.version.is_missing() {
        return Err("no \"version\" field: this is not a Terraform state".into());
    }
    let version = t
        .version
        .as_u64()
        .ok_or("\"version\" is not a non-negative integer")?;
    if version != 3 && version != 4 {
        return Err(format!(
            "state format version {version} is not supported (3 or 4 expected)"
        ));
    }
    if t.serial.is_missing() {
        return Err("no \"serial\" field".into());
    }
    let serial = t
        .serial
        .as_u64()
        .ok_or("\"serial\" is not a non-negative integer below 2^64")?;
    let lineage = match t.lineage {
        Scalar::Missing | Scalar::Null => String::new(),
        Scalar::Str(s) => s,
        _ => return Err("\"lineage\" is not a string".into()),
    };
    let terraform_version = t.terraform_version.as_str().map(str::to_string);
    let (resources, outputs) = if version == 4 {
        (t.resources.unwrap_or(0), t.outputs.unwrap_or(0))
    } else {
        // Version 3 keeps resources and outputs per module.
        let ms = t.modules.unwrap_or_default();
        (
            ms.iter().filter_map(|m| m.0).sum(),
            ms.iter().filter_map(|m| m.1).sum(),
        )
    };
    Ok(StateInfo::Plain(Summary {
        version,
        terraform_version,
        serial,
        lineage,
        resources,
        outputs,
    }))
}

/// Serial and lineage of a plain state (format 3 or 4), read without
/// building the document: for bulk work such as backups. `None` for
/// anything [`parse`] would not call a plain state.
pub fn header(bytes: &[u8]) -> Option<(u64, String)> {
    match parse(bytes) {
        Ok(StateInfo::Plain(s)) => Some((s.serial, s.lineage)),
        _ => None,
    }
}

/// Serial and lineage from the first bytes of a plain state (format 3 or
/// 4): Terraform and OpenTofu write `version`, `terraform_version`,
/// `serial` and `lineage` first, in a few hundred bytes. `None` when any of
/// them is not complete in `head`, when the head is not the start of a
/// JSON object, when it has a byte-order mark or shows an encrypted state:
/// the caller then reads the whole document ([`header`]). For what is only
/// recorded (a backup's manifest); the push rules parse the whole document.
pub fn head_header(head: &[u8]) -> Option<(u64, String)> {
    if head.starts_with(b"\xEF\xBB\xBF") {
        return None;
    }
    let t = stream::head(head)?;
    if t.encrypted_data || !matches!(t.version.as_u64(), Some(3 | 4)) {
        return None;
    }
    let lineage = match t.lineage {
        Scalar::Null => String::new(),
        Scalar::Str(s) => s,
        _ => return None,
    };
    Some((t.serial.as_u64()?, lineage))
}

/// A state's bytes, wherever they are (in memory, or spooled to a file):
/// what the push rules ask of the current state.
pub trait StateBody {
    /// Nothing but whitespace (an empty object is a state being created).
    fn is_blank(&self) -> bool;
    /// [`parse`] of the bytes.
    fn info(&self) -> Result<StateInfo, String>;
    /// [`stream::digest`] of the bytes.
    fn digest(&self) -> Option<[u8; 32]>;
    /// Exactly these bytes.
    fn same_bytes(&self, other: &[u8]) -> bool;
    /// Exactly these bytes, whose MD5 is known (a body that knows its own
    /// MD5 compares the two first, without hashing `other` again).
    fn same_payload(&self, other: &crate::store::Payload) -> bool {
        self.same_bytes(other)
    }
}

impl StateBody for [u8] {
    fn is_blank(&self) -> bool {
        self.iter().all(u8::is_ascii_whitespace)
    }
    fn info(&self) -> Result<StateInfo, String> {
        parse(self)
    }
    fn digest(&self) -> Option<[u8; 32]> {
        stream::digest(self)
    }
    fn same_bytes(&self, other: &[u8]) -> bool {
        self == other
    }
}

/// Why `terraform state push` would refuse to replace a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PushRefusal {
    #[error(
        "cannot push state with lineage {new:?} over unrelated state with lineage {existing:?}"
    )]
    Lineage { new: String, existing: String },
    #[error("cannot push state with serial {new} over newer state with serial {existing}")]
    OlderSerial { new: u64, existing: u64 },
    #[error(
        "cannot overwrite existing state with serial {serial} with a different state that has the same serial"
    )]
    SameSerialDifferent { serial: u64 },
    #[error("the {which} state is encrypted (OpenTofu): its lineage and serial cannot be checked")]
    Encrypted { which: &'static str },
    #[error("the remote state is not a Terraform state ({reason}): it cannot be checked")]
    UnreadableRemote { reason: String },
}

/// Terraform's `statemgr.CheckValidImport`, as used by `terraform state push`:
/// may `new` replace `existing`? `force` skips every check.
pub fn check_push(new: &[u8], existing: Option<&[u8]>) -> Result<(), PushRefusal> {
    check_push_body(new, existing)
}

/// [`check_push`] against a current state wherever its bytes are.
pub fn check_push_body<B: StateBody + ?Sized>(
    new: &[u8],
    existing: Option<&B>,
) -> Result<(), PushRefusal> {
    let Some(existing) = existing.filter(|e| !e.is_blank()) else {
        return Ok(());
    };
    let old = match existing.info() {
        Ok(StateInfo::Plain(s)) => s,
        Ok(StateInfo::Encrypted { .. }) => return Err(PushRefusal::Encrypted { which: "remote" }),
        Err(reason) => return Err(PushRefusal::UnreadableRemote { reason }),
    };
    if old.is_empty() {
        return Ok(());
    }
    let new_s = match parse(new) {
        Ok(StateInfo::Plain(s)) => s,
        // The caller validates its input first; an encrypted input needs --force.
        Ok(StateInfo::Encrypted { .. }) | Err(_) => {
            return Err(PushRefusal::Encrypted { which: "new" });
        }
    };
    // A legacy state without lineage may take one.
    if !old.lineage.is_empty() && !new_s.lineage.is_empty() && old.lineage != new_s.lineage {
        return Err(PushRefusal::Lineage {
            new: new_s.lineage,
            existing: old.lineage,
        });
    }
    if old.serial > new_s.serial {
        return Err(PushRefusal::OlderSerial {
            new: new_s.serial,
            existing: old.serial,
        });
    }
    if old.serial == new_s.serial && !same_content(new, existing) {
        return Err(PushRefusal::SameSerialDifferent {
            serial: new_s.serial,
        });
    }
    Ok(())
}

/// The same bytes with the top-level `"serial"` number replaced by
/// `serial`: everything else, byte for byte, is kept (no re-serialising).
/// The result is checked: it parses, has the new serial, and is otherwise
/// the same JSON document.
pub fn with_serial(bytes: &[u8], serial: u64) -> Result<Vec<u8>, String> {
    let (start, end) =
        top_level_number(bytes, b"serial").ok_or("no top-level \"serial\" number")?;
    let mut out = Vec::with_capacity(bytes.len() + 4);
    out.extend_from_slice(&bytes[..start]);
    out.extend_from_slice(serial.to_string().as_bytes());
    out.extend_from_slice(&bytes[end..]);
    // Compared as JSON values, by digest (neither document is built).
    let before = stream::digest_with(bytes, Some(serial))?;
    let after = stream::digest_with(&out, None)?;
    if before != after {
        return Err("changing the serial would change more than the serial".into());
    }
    Ok(out)
}

/// Byte range of the number value of `key` in the top-level object.
fn top_level_number(b: &[u8], key: &[u8]) -> Option<(usize, usize)> {
    let (mut depth, mut i) = (0usize, 0usize);
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            b'"' => {
                // A string: find its end, honouring escapes.
                let start = i + 1;
                let mut j = start;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                let s = b.get(start..j)?;
                i = j;
                if depth == 1 && s == key {
                    // Key position if a ':' follows.
                    let mut k = j + 1;
                    while k < b.len() && b[k].is_ascii_whitespace() {
                        k += 1;
                    }
                    if b.get(k) == Some(&b':') {
                        k += 1;
                        while k < b.len() && b[k].is_ascii_whitespace() {
                            k += 1;
                        }
                        let n0 = k;
                        while k < b.len() && b[k].is_ascii_digit() {
                            k += 1;
                        }
                        return (k > n0).then_some((n0, k));
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Equal as JSON documents (whitespace and key order do not matter), as
/// `serde_json::Value` compares them, by digest.
fn same_content<B: StateBody + ?Sized>(a: &[u8], b: &B) -> bool {
    b.same_bytes(a) || matches!((stream::digest(a), b.digest()), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn st(lineage: &str, serial: u64, resources: usize) -> Vec<u8> {
        let res: Vec<String> = (0..resources)
            .map(|i| {
                format!(
                    r#"{{"mode":"managed","type":"null_resource","name":"r{i}","instances":[]}}"#
                )
            })
            .collect();
        format!(
            r#"{{"version":4,"terraform_version":"1.11.0","serial":{serial},"lineage":"{lineage}","outputs":{{}},"resources":[{}],"check_results":null}}"#,
            res.join(",")
        )
        .into_bytes()
    }

    /// The parser before streaming (it built the whole document): the
    /// streaming one must give the same answer on every document.
    #[allow(clippy::all)]
    fn reference_parse(bytes: &[u8]) -> Result<StateInfo, String> {
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            return Err(
                "the file starts with a UTF-8 byte-order mark, which Terraform does not accept"
                    .into(),
            );
        }
        let v: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|e| format!("not valid JSON: {e}"))?;
        let obj = v.as_object().ok_or("not a JSON object")?;
        if obj.contains_key("encrypted_data") {
            let ev = obj
                .get("encryption_version")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("unknown");
            return Ok(StateInfo::Encrypted {
                encryption_version: ev.to_string(),
            });
        }
        let version = obj
            .get("version")
            .ok_or("no \"version\" field: this is not a Terraform state")?
            .as_u64()
            .ok_or("\"version\" is not a non-negative integer")?;
        if version != 3 && version != 4 {
            return Err(format!(
                "state format version {version} is not supported (3 or 4 expected)"
            ));
        }
        let serial = obj
            .get("serial")
            .ok_or("no \"serial\" field")?
            .as_u64()
            .ok_or("\"serial\" is not a non-negative integer below 2^64")?;
        let lineage = match obj.get("lineage") {
            None | Some(serde_json::Value::Null) => String::new(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => return Err("\"lineage\" is not a string".into()),
        };
        let terraform_version = obj
            .get("terraform_version")
            .and_then(serde_json::Value::as_str)
            .map(str::to_string);
        let (resources, outputs) = if version == 4 {
            (
                obj.get("resources")
                    .and_then(serde_json::Value::as_array)
                    .map_or(0, Vec::len),
                obj.get("outputs")
                    .and_then(serde_json::Value::as_object)
                    .map_or(0, |m| m.len()),
            )
        } else {
            // Version 3 keeps resources and outputs per module.
            let modules = obj.get("modules").and_then(serde_json::Value::as_array);
            let count = |field: &str| {
                modules.map_or(0, |ms| {
                    ms.iter()
                        .filter_map(|m| m.get(field).and_then(serde_json::Value::as_object))
                        .map(|o| o.len())
                        .sum()
                })
            };
            (count("resources"), count("outputs"))
        };
        Ok(StateInfo::Plain(Summary {
            version,
            terraform_version,
            serial,
            lineage,
            resources,
            outputs,
        }))
    }

    #[test]
    fn streaming_parse_agrees_with_the_whole_document_parse() {
        let docs: Vec<Vec<u8>> = vec![
            st("L", 7, 2),
            st("", 0, 0),
            br#"{"version":4,"serial":1,"lineage":"a","serial":2,"outputs":{"a":1,"a":2,"b":3},"resources":[1,2,3],"resources":[1]}"#.to_vec(),
            br#"{"version":4,"serial":1,"lineage":null,"outputs":[],"resources":{}}"#.to_vec(),
            br#"{"version":3,"serial":2,"lineage":"x","modules":[{"path":["root"],"resources":{"a":{},"b":{},"a":{}},"outputs":{"o":{}}},{"resources":{"c":{}}},5,[]]}"#.to_vec(),
            br#"{"version":3,"serial":2,"modules":{}}"#.to_vec(),
            br#"{"meta":{},"encrypted_data":"x"}"#.to_vec(),
            br#"{"encrypted_data":null,"encryption_version":7}"#.to_vec(),
            br#"{"version":4.0,"serial":1}"#.to_vec(),
            br#"{"version":4,"serial":1e3,"lineage":"x"}"#.to_vec(),
            br#"{"version":4,"serial":18446744073709551615,"lineage":"x"}"#.to_vec(),
            br#"{"version":4,"serial":18446744073709551616,"lineage":"x"}"#.to_vec(),
            br#"{"version":4,"serial":1,"lineage":"x","terraform_version":1}"#.to_vec(),
            br#"{"version":4,"serial":1,"lineage":"x"} "#.to_vec(),
            br#"{"version":4,"serial":1,"lineage":"x"} {}"#.to_vec(),
            br#"[{"version":4}]"#.to_vec(),
            b"7".to_vec(),
            b"".to_vec(),
            b"{\"version\":4,\"serial\":1,\"lineage\":\"\\u00e9\"}".to_vec(),
        ];
        for d in &docs {
            let want = reference_parse(d);
            assert_eq!(parse(d), want, "{}", String::from_utf8_lossy(d));
            assert_eq!(
                parse_reader(std::io::BufReader::new(&d[..])),
                want,
                "{}",
                String::from_utf8_lossy(d)
            );
        }
    }

    #[test]
    fn parses_summary() {
        let s = parse(&st("L", 7, 2)).expect("parse");
        assert_eq!(
            s,
            StateInfo::Plain(Summary {
                version: 4,
                terraform_version: Some("1.11.0".into()),
                serial: 7,
                lineage: "L".into(),
                resources: 2,
                outputs: 0
            })
        );
        let enc = br#"{"meta":{"key_provider.pbkdf2.k":"x"},"encrypted_data":"AAAA","encryption_version":"v0"}"#;
        assert_eq!(
            parse(enc),
            Ok(StateInfo::Encrypted {
                encryption_version: "v0".into()
            })
        );
    }

    #[test]
    fn rejects_bad_states() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{}",
            br#"{"version":5,"serial":1,"lineage":"x"}"#,
            br#"{"version":4,"serial":"1","lineage":"x"}"#,
            br#"{"version":4,"serial":-1,"lineage":"x"}"#,
            br#"{"version":4,"serial":1.5,"lineage":"x"}"#,
            br#"{"version":4,"serial":1,"lineage":7}"#,
            br#"{"version":4,"lineage":"x"}"#,
            b"\xEF\xBB\xBF{\"version\":4,\"serial\":1,\"lineage\":\"x\"}",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_head_header_is_the_header_or_nothing() {
        let doc = st("L", 7, 3);
        let full = header(&doc);
        assert!(full.is_some());
        for cut in 0..=doc.len() {
            let h = head_header(&doc[..cut]);
            assert!(h.is_none() || h == full, "{cut}: {h:?}");
        }
        assert_eq!(
            head_header(&doc[..100]),
            full,
            "Terraform's order: in the head"
        );
        assert_eq!(
            head_header(
                br#"{"meta":{},"encrypted_data":"x","version":4,"serial":1,"lineage":"x","#
            ),
            None
        );
        assert_eq!(
            head_header(br#"{"version":5,"serial":1,"lineage":"x","#),
            None
        );
        assert_eq!(
            head_header(br#"{"version":4,"serial":1,"#),
            None,
            "no lineage yet"
        );
    }

    #[test]
    fn header_agrees_with_parse() {
        let cases: Vec<Vec<u8>> = vec![
            st("L", 7, 2),
            br#"{"version":3,"serial":2,"lineage":null,"modules":[]}"#.to_vec(),
            br#"{"version":5,"serial":1,"lineage":"x"}"#.to_vec(),
            br#"{"meta":{},"encrypted_data":"x","encryption_version":"v0"}"#.to_vec(),
            br#"{"version":4,"serial":"1","lineage":"x"}"#.to_vec(),
            b"not json".to_vec(),
        ];
        for c in cases {
            let want = match parse(&c) {
                Ok(StateInfo::Plain(s)) => Some((s.serial, s.lineage)),
                _ => None,
            };
            assert_eq!(header(&c), want, "{}", String::from_utf8_lossy(&c));
        }
    }

    #[test]
    fn serial_is_replaced_in_place() {
        let raw = "{\n  \"version\": 4,\n  \"serial\": 7,\n  \"lineage\": \"L\",\n  \"outputs\": {\"serial\": {\"value\": \"\\u003c \\\" serial\"}},\n  \"resources\": []\n}\n";
        let out = with_serial(raw.as_bytes(), 12).expect("rewrite");
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            raw.replace("\"serial\": 7", "\"serial\": 12"),
            "only the top-level serial changes, escapes kept"
        );
        // A nested "serial" before the top-level one is not touched.
        let nested = br#"{"outputs":{"serial":{"value":1}},"version":4,"serial":3,"lineage":"x"}"#;
        let out = with_serial(nested, 4).expect("rewrite");
        assert_eq!(
            out,
            br#"{"outputs":{"serial":{"value":1}},"version":4,"serial":4,"lineage":"x"}"#
        );
        assert!(with_serial(br#"{"version":4}"#, 1).is_err());
    }

    type Case = (
        &'static str,
        Vec<u8>,
        Option<Vec<u8>>,
        Result<(), fn(&PushRefusal) -> bool>,
    );

    /// The push rules table of `terraform state push`.
    #[test]
    fn push_rules() {
        use PushRefusal::*;
        let cases: Vec<Case> = vec![
            ("no remote state", st("A", 1, 1), None, Ok(())),
            (
                "empty remote object",
                st("A", 1, 1),
                Some(b"".to_vec()),
                Ok(()),
            ),
            (
                "remote state is empty (no resources, no outputs)",
                st("A", 1, 1),
                Some(st("B", 9, 0)),
                Ok(()),
            ),
            (
                "higher serial, same lineage",
                st("A", 6, 1),
                Some(st("A", 5, 1)),
                Ok(()),
            ),
            (
                "same serial, same content",
                st("A", 5, 1),
                Some(st("A", 5, 1)),
                Ok(()),
            ),
            (
                "legacy remote without lineage",
                st("A", 6, 1),
                Some(st("", 5, 1)),
                Ok(()),
            ),
            (
                "other lineage",
                st("B", 6, 1),
                Some(st("A", 5, 1)),
                Err(|r| matches!(r, Lineage { .. })),
            ),
            (
                "lower serial",
                st("A", 4, 1),
                Some(st("A", 5, 1)),
                Err(|r| {
                    matches!(
                        r,
                        OlderSerial {
                            new: 4,
                            existing: 5
                        }
                    )
                }),
            ),
            (
                "same serial, other content",
                st("A", 5, 2),
                Some(st("A", 5, 1)),
                Err(|r| matches!(r, SameSerialDifferent { serial: 5 })),
            ),
            (
                "remote encrypted",
                st("A", 6, 1),
                Some(br#"{"meta":{},"encrypted_data":"x","encryption_version":"v0"}"#.to_vec()),
                Err(|r| matches!(r, Encrypted { which: "remote" })),
            ),
            (
                "remote garbage",
                st("A", 6, 1),
                Some(b"not json".to_vec()),
                Err(|r| matches!(r, UnreadableRemote { .. })),
            ),
        ];
        for (name, new, old, want) in cases {
            let got = check_push(&new, old.as_deref());
            match (want, got) {
                (Ok(()), Ok(())) => {}
                (Err(pred), Err(r)) => assert!(pred(&r), "{name}: unexpected refusal {r}"),
                (w, g) => panic!("{name}: wanted {:?}, got {g:?}", w.is_ok()),
            }
        }
    }
}
