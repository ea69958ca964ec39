//! The files a setting can come from besides flags and the environment:
//! a Terraform `backend "s3"` block in the `*.tf` files of a directory, the
//! backend settings `terraform init` recorded in `.terraform/terraform.tfstate`
//! (and the workspace it selected, `.terraform/environment`), and an OpenMCF
//! manifest's labels. Each is read into a flat map of backend setting names
//! (`bucket`, `endpoints.s3`, `use_path_style`...) to strings.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Backend settings from one file, flattened: nested objects become dotted
/// names (`endpoints.s3`), booleans and numbers their text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Layer {
    /// The file the values came from.
    pub file: PathBuf,
    pub values: BTreeMap<String, String>,
}

impl Layer {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }
}

/// The backends tfsync reads a block of (the type is recorded as `type`
/// for all but s3, the one it always read).
pub const BACKENDS: &[&str] = &["s3", "local", "azurerm"];

/// Does `dir` use Terraform's default backend, `local`: a `terraform.tfstate`
/// or `terraform.tfstate.d` there, or `*.tf` files with no backend block at
/// all (and no `terraform init` record of another backend)?
pub fn default_local(dir: &Path) -> bool {
    if dir.join(".terraform").join("terraform.tfstate").exists() {
        return false;
    }
    if dir.join("terraform.tfstate").is_file() || dir.join("terraform.tfstate.d").is_dir() {
        return true;
    }
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut any = false;
    for p in rd.filter_map(|e| e.ok().map(|e| e.path())) {
        if !(p.extension().is_some_and(|x| x == "tf") && p.is_file()) {
            continue;
        }
        any = true;
        let Ok(text) = std::fs::read_to_string(&p) else {
            return false;
        };
        let Ok(body) = hcl::from_str::<hcl::Body>(&text) else {
            return false;
        };
        let has_backend = body
            .blocks()
            .filter(|b| b.identifier() == "terraform")
            .any(|t| {
                t.body()
                    .blocks()
                    .any(|b| b.identifier() == "backend" || b.identifier() == "cloud")
            });
        if has_backend {
            return false;
        }
    }
    any
}

/// The `backend "s3"` (or `"local"`) block of the `*.tf` files in `dir`, if one has it.
/// Files are read in name order, as Terraform does; a second backend block
/// is an error there too.
pub fn tf_backend_block(dir: &Path) -> Result<Option<Layer>, String> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "tf") && p.is_file())
            .collect(),
        Err(_) => return Ok(None),
    };
    files.sort();
    let mut found: Option<Layer> = None;
    for file in files {
        let text = std::fs::read_to_string(&file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let body: hcl::Body = hcl::from_str(&text)
            .map_err(|e| format!("{} is not valid HCL: {e}", file.display()))?;
        for terraform in body.blocks().filter(|b| b.identifier() == "terraform") {
            for backend in terraform
                .body()
                .blocks()
                .filter(|b| b.identifier() == "backend")
            {
                let kind = backend.labels().first().map(|l| l.as_str()).unwrap_or("");
                if !BACKENDS.contains(&kind) {
                    continue;
                }
                if let Some(prev) = &found {
                    let prev_kind = prev.get("type").unwrap_or("s3");
                    let kinds = if prev_kind == kind {
                        format!("two backend \"{kind}\" blocks")
                    } else {
                        format!("two backend blocks (\"{prev_kind}\" and \"{kind}\")")
                    };
                    return Err(format!(
                        "{kinds}: in {} and {}; Terraform allows one",
                        prev.file.display(),
                        file.display()
                    ));
                }
                let mut values = BTreeMap::new();
                if kind != "s3" {
                    values.insert("type".to_string(), kind.to_string());
                }
                for attr in backend.body().attributes() {
                    flatten_hcl(attr.key(), attr.expr(), &mut values);
                }
                found = Some(Layer {
                    file: file.clone(),
                    values,
                });
            }
        }
    }
    Ok(found)
}

fn flatten_hcl(name: &str, expr: &hcl::Expression, out: &mut BTreeMap<String, String>) {
    use hcl::Expression as E;
    match expr {
        E::String(s) => {
            out.insert(name.to_string(), s.clone());
        }
        E::Bool(b) => {
            out.insert(name.to_string(), b.to_string());
        }
        E::Number(n) => {
            out.insert(name.to_string(), n.to_string());
        }
        E::Object(o) => {
            for (k, v) in o {
                let k = match k {
                    hcl::ObjectKey::Identifier(i) => i.to_string(),
                    hcl::ObjectKey::Expression(E::String(s)) => s.clone(),
                    _ => continue,
                };
                flatten_hcl(&format!("{name}.{k}"), v, out);
            }
        }
        // Backend blocks cannot use variables or functions; lists
        // (allowed_account_ids...) are not settings tfsync uses.
        _ => {}
    }
}

/// The backend settings recorded by `terraform init` in
/// `<dir>/.terraform/terraform.tfstate`, when its backend is `s3`.
pub fn tf_init_state(dir: &Path) -> Result<Option<Layer>, String> {
    let file = dir.join(".terraform").join("terraform.tfstate");
    let Ok(bytes) = std::fs::read(&file) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| format!("{} is not valid JSON: {e}", file.display()))?;
    let kind = v["backend"]["type"].as_str().unwrap_or("");
    if !BACKENDS.contains(&kind) {
        return Ok(None);
    }
    let mut values = BTreeMap::new();
    if kind != "s3" {
        values.insert("type".to_string(), kind.to_string());
    }
    if let Some(config) = v["backend"]["config"].as_object() {
        for (k, val) in config {
            flatten_json(k, val, &mut values);
        }
    }
    Ok(Some(Layer { file, values }))
}

fn flatten_json(name: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    use serde_json::Value as V;
    match v {
        V::String(s) => {
            out.insert(name.to_string(), s.clone());
        }
        V::Bool(b) => {
            out.insert(name.to_string(), b.to_string());
        }
        V::Number(n) => {
            out.insert(name.to_string(), n.to_string());
        }
        V::Object(o) => {
            for (k, v) in o {
                flatten_json(&format!("{name}.{k}"), v, out);
            }
        }
        V::Null | V::Array(_) => {}
    }
}

/// The workspace `terraform workspace select` recorded in
/// `<dir>/.terraform/environment`.
pub fn tf_selected_workspace(dir: &Path) -> Option<(String, PathBuf)> {
    let file = dir.join(".terraform").join("environment");
    let text = std::fs::read_to_string(&file).ok()?;
    let w = text.trim();
    (!w.is_empty()).then(|| (w.to_string(), file))
}

/// Which tool's OpenMCF labels come first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Engine {
    Terraform,
    Tofu,
}

/// An OpenMCF manifest's backend labels (`metadata.labels`):
/// `terraform.openmcf.org/backend.{type,bucket,key,region,endpoint}`, with
/// `tofu.openmcf.org/...` first for OpenTofu (falling back to the
/// `terraform.` ones) and the deprecated `backend.object` read as `key`.
/// Returned with backend setting names (`bucket`, `key`, `region`,
/// `endpoint`, `type`).
pub fn openmcf_manifest(file: &Path, engine: Engine) -> Result<Layer, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the manifest {}: {e}", file.display()))?;
    let doc: serde_yaml::Value = serde_yaml::from_str(&text)
        .map_err(|e| format!("the manifest {} is not valid YAML: {e}", file.display()))?;
    let labels = doc
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.as_mapping());
    let label = |name: &str| -> Option<String> {
        labels?
            .get(serde_yaml::Value::String(name.to_string()))
            .and_then(|v| match v {
                serde_yaml::Value::String(s) => Some(s.clone()),
                serde_yaml::Value::Bool(b) => Some(b.to_string()),
                serde_yaml::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .filter(|s| !s.trim().is_empty())
    };
    let domains: &[&str] = match engine {
        Engine::Tofu => &["tofu.openmcf.org", "terraform.openmcf.org"],
        Engine::Terraform => &["terraform.openmcf.org"],
    };
    let mut values = BTreeMap::new();
    for setting in ["type", "bucket", "key", "region", "endpoint"] {
        let mut names = vec![setting];
        if setting == "key" {
            names.push("object"); // deprecated synonym
        }
        let found = domains.iter().find_map(|d| {
            names.iter().find_map(|n| {
                let name = format!("{d}/backend.{n}");
                label(&name).map(|v| (v, name))
            })
        });
        if let Some((v, name)) = found {
            values.insert(setting.to_string(), v);
            // Which label it was, for `tfsync config`.
            values.insert(format!("label:{setting}"), name);
        }
    }
    if let Some(t) = values.get("type")
        && !BACKENDS.contains(&t.as_str())
    {
        return Err(format!(
            "the manifest {} names backend type {t:?}; tfsync reads s3, local and azurerm backends only",
            file.display()
        ));
    }
    Ok(Layer {
        file: file.to_path_buf(),
        values,
    })
}
