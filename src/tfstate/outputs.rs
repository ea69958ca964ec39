//! The root module's outputs of a state, read without rewriting it.
//! Format 4 keeps them in `outputs`; format 3 in the root module
//! (`modules[]` with `path == ["root"]`).

use super::state::{self, StateInfo};
use super::stream;
use serde_json::Value;

/// One root output: its value and its type as Terraform wrote them.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    pub name: String,
    pub sensitive: bool,
    /// The cty type in Terraform's JSON form (`"string"`, `["list","string"]`,
    /// ...); `null` when the state does not record one.
    pub r#type: Value,
    pub value: Value,
}

/// The root outputs of a state, sorted by name (as `terraform output`).
pub fn parse(bytes: &[u8]) -> Result<Vec<Output>, String> {
    match state::parse(bytes)? {
        StateInfo::Encrypted { .. } => {
            return Err(
                "the state is encrypted (OpenTofu): its outputs cannot be read without its key"
                    .into(),
            );
        }
        StateInfo::Plain(_) => {}
    }
    // One more streaming pass that keeps only the outputs (the resources,
    // nearly all of a state, are skipped unread).
    let (t, kept) = match stream::top_and_outputs(bytes).map_err(|e| e.to_string())? {
        stream::Doc::Object(d) => d,
        stream::Doc::NotObject => return Err("not a JSON object".into()),
    };
    let root = if t.version == stream::Scalar::U64(3) {
        kept.modules.and_then(|ms| {
            let at = ms
                .iter()
                .position(|m| m.0 == serde_json::json!(["root"]))
                .unwrap_or(0);
            ms.into_iter().nth(at).map(|m| m.1)
        })
    } else {
        kept.v4
    };
    let outputs = root.as_ref().and_then(Value::as_object);
    let mut out: Vec<Output> = outputs
        .into_iter()
        .flatten()
        .map(|(name, o)| Output {
            name: name.clone(),
            sensitive: o["sensitive"].as_bool().unwrap_or(false),
            r#type: o.get("type").cloned().unwrap_or(Value::Null),
            value: o.get("value").cloned().unwrap_or(Value::Null),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// A value written the way `terraform output` shows it (HCL-like):
/// strings quoted, lists and objects over several lines, indented by two.
pub fn render_hcl(v: &Value, indent: usize) -> String {
    let pad = "  ".repeat(indent + 1);
    let end = "  ".repeat(indent);
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => Value::String(s.clone()).to_string(),
        Value::Array(items) if items.is_empty() => "[]".into(),
        Value::Array(items) => {
            let body: String = items
                .iter()
                .map(|i| format!("{pad}{},\n", render_hcl(i, indent + 1)))
                .collect();
            format!("[\n{body}{end}]")
        }
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(m) => {
            let width = m
                .keys()
                .map(|k| hcl_key(k).chars().count())
                .max()
                .unwrap_or(0);
            // cty (and so `terraform output`) shows attributes sorted by name.
            let mut entries: Vec<_> = m.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let body: String = entries
                .into_iter()
                .map(|(k, i)| {
                    format!(
                        "{pad}{:<width$} = {}\n",
                        hcl_key(k),
                        render_hcl(i, indent + 1)
                    )
                })
                .collect();
            format!("{{\n{body}{end}}}")
        }
    }
}

/// An object key: bare when it is an identifier, quoted otherwise.
fn hcl_key(k: &str) -> String {
    let ident = k
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ident {
        k.to_string()
    } else {
        Value::String(k.to_string()).to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_v4_and_v3_outputs() {
        let v4 = br#"{"version":4,"serial":1,"lineage":"l","outputs":{"z":{"value":"a","type":"string"},"pw":{"value":"s3cr3t","type":"string","sensitive":true}},"resources":[]}"#;
        let o = parse(v4).expect("v4");
        assert_eq!(o.len(), 2);
        assert_eq!(o[0].name, "pw");
        assert!(o[0].sensitive);
        assert_eq!(o[1].value, json!("a"));
        assert_eq!(o[1].r#type, json!("string"));
        let v3 = br#"{"version":3,"serial":1,"lineage":"l","modules":[{"path":["root"],"outputs":{"ip":{"sensitive":false,"type":"string","value":"10.0.0.1"}},"resources":{}}]}"#;
        let o = parse(v3).expect("v3");
        assert_eq!(o[0].value, json!("10.0.0.1"));
        assert!(parse(br#"{"encrypted_data":"x","encryption_version":"v0"}"#).is_err());
    }

    #[test]
    fn renders_like_terraform() {
        assert_eq!(render_hcl(&json!("a\"b"), 0), r#""a\"b""#);
        assert_eq!(render_hcl(&json!(["a", 1]), 0), "[\n  \"a\",\n  1,\n]");
        assert_eq!(
            render_hcl(&json!({"a": {"b c": true}, "long": null}), 0),
            "{\n  a    = {\n    \"b c\" = true\n  }\n  long = null\n}"
        );
    }
}
