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

/// The backends tfsync reads a block of: `s3`, `oss` (Alibaba Cloud OSS, read
/// through its S3-compatible API; see `keys::Layout::Oss`) and `local`, `azurerm` (the
/// type is recorded as `type` for all but s3, the one it always read).
pub const BACKENDS: &[&str] = &["s3", "oss", "local", "azurerm", "gcs"];

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

/// The `backend "s3"` (or `"oss"`, `"local"`) block of the `*.tf` files in `dir`, if one has it.
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
                as_s3_names(kind, &mut values);
                found = Some(Layer {
                    file: file.clone(),
                    values,
                });
            }
        }
    }
    Ok(found)
}

/// An `oss` block's settings under the names of the s3 backend's (its
/// `prefix` is the workspace key prefix), and `type = "oss"` (an s3 block
/// gets no `type`).
fn as_s3_names(kind: &str, values: &mut BTreeMap<String, String>) {
    if kind == "oss" {
        values.remove("workspace_key_prefix");
        if let Some(p) = values.remove("prefix") {
            // Terraform trims `/` around it and a leading `./`.
            let p = p.trim_matches('/');
            let p = p.strip_prefix("./").unwrap_or(p);
            values.insert("workspace_key_prefix".into(), p.to_string());
        }
        values.insert("type".into(), kind.to_string());
    }
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
/// `<dir>/.terraform/terraform.tfstate`, when its backend is `s3` or `oss`.
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
    };
    let mut values = BTreeMap::new();
    if kind != "s3" {
        values.insert("type".to_string(), kind.to_string());
    }
    if let Some(config) = v["backend"]["config"].as_object() {
        for (k, val) in config {
            flatten_json(k, val, &mut values);
        }
    }
    as_s3_names(kind, &mut values);
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

/// The label that names the manifest's provisioner (`terraform`, `tofu`,
/// `pulumi`; case-insensitive, as OpenMCF reads it).
pub const PROVISIONER_LABEL: &str = "openmcf.org/provisioner";

impl Engine {
    /// The engine a manifest's `openmcf.org/provisioner` names; `pulumi` and
    /// anything else are errors (tfsync reads Terraform / OpenTofu state).
    pub fn from_provisioner(value: &str, file: &Path) -> Result<Engine, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "terraform" => Ok(Engine::Terraform),
            "tofu" => Ok(Engine::Tofu),
            other => Err(format!(
                "the manifest {} says {PROVISIONER_LABEL}: {other:?}; tfsync reads the state of \
                 terraform and tofu manifests only: pass --engine terraform or --engine tofu \
                 to read its terraform.openmcf.org/ or tofu.openmcf.org/ backend labels anyway",
                file.display()
            )),
        }
    }

    /// The label prefixes read, first wins (`tfsync config` shows them).
    pub fn label_prefixes(self) -> &'static [&'static str] {
        match self {
            Engine::Tofu => &["tofu.openmcf.org", "terraform.openmcf.org"],
            Engine::Terraform => &["terraform.openmcf.org"],
        }
    }
}

/// An OpenMCF manifest's `metadata.labels` (string, boolean and number
/// values; others are not settings).
#[derive(Debug, Clone)]
pub struct Manifest {
    pub file: PathBuf,
    labels: BTreeMap<String, String>,
}

/// Reads the manifest's labels.
pub fn read_manifest(file: &Path) -> Result<Manifest, String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read the manifest {}: {e}", file.display()))?;
    let doc: yaml_serde::Value = yaml_serde::from_str(&text)
        .map_err(|e| format!("the manifest {} is not valid YAML: {e}", file.display()))?;
    let mut labels = BTreeMap::new();
    if let Some(m) = doc
        .get("metadata")
        .and_then(|m| m.get("labels"))
        .and_then(|l| l.as_mapping())
    {
        for (k, v) in m {
            let (yaml_serde::Value::String(k), Some(v)) = (k, yaml_text(v)) else {
                continue;
            };
            if !v.trim().is_empty() {
                labels.insert(k.clone(), v);
            }
        }
    }
    Ok(Manifest {
        file: file.to_path_buf(),
        labels,
    })
}

fn yaml_text(v: &yaml_serde::Value) -> Option<String> {
    match v {
        yaml_serde::Value::String(s) => Some(s.clone()),
        yaml_serde::Value::Bool(b) => Some(b.to_string()),
        yaml_serde::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Manifest {
    /// The `openmcf.org/provisioner` label, as a layer of its own (setting
    /// `provisioner`) for the engine's lookup.
    pub fn provisioner_layer(&self) -> Layer {
        let mut values = BTreeMap::new();
        if let Some(v) = self.labels.get(PROVISIONER_LABEL) {
            values.insert("provisioner".to_string(), v.clone());
            values.insert(
                "label:provisioner".to_string(),
                PROVISIONER_LABEL.to_string(),
            );
        }
        Layer {
            file: self.file.clone(),
            values,
        }
    }

    /// The backend labels (`metadata.labels`) for `engine`:
    /// `terraform.openmcf.org/backend.{type,bucket,key,region,endpoint}`,
    /// with `tofu.openmcf.org/...` first for OpenTofu (falling back to the
    /// `terraform.` ones) and the deprecated `backend.object` read as `key`.
    /// Returned with backend setting names (`bucket`, `key`, `region`,
    /// `endpoint`, `type`).
    pub fn backend(&self, engine: Engine) -> Result<Layer, String> {
        backend_labels(&self.file, engine, &|name| self.labels.get(name).cloned())
    }
}

fn backend_labels(
    file: &Path,
    engine: Engine,
    label: &dyn Fn(&str) -> Option<String>,
) -> Result<Layer, String> {
    let domains = engine.label_prefixes();
    let mut values = BTreeMap::new();
    // Which labels were read, for the "missing configuration" message.
    if engine == Engine::Tofu {
        values.insert("engine".to_string(), "tofu".to_string());
    }
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
            "the manifest {} names backend type {t:?}; tfsync reads s3, local, azurerm and gcs backends only",
            file.display()
        ));
    }
    Ok(Layer {
        file: file.to_path_buf(),
        values,
    })
}
