//! Where a resolved value came from, as `tfsync config` shows it.

use serde::Serialize;
use std::fmt;
use std::path::PathBuf;

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Flag(&'static str),
    /// A `backend "s3"` block in this `.tf` file.
    BackendBlock(PathBuf),
    /// A `backend "local"` block in this `.tf` file.
    LocalBlock(PathBuf),
    /// A block of another backend type (`gcs`, `azurerm`, `oss`) in this
    /// `.tf` file.
    OtherBlock(String, PathBuf),
    /// What `terraform init` recorded in `.terraform/`.
    TerraformInit(PathBuf),
    /// An OpenMCF manifest's label.
    Manifest(PathBuf, String),
    Env(&'static str),
    Prompt,
    Default(&'static str),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag --{flag}"),
            Source::BackendBlock(p) => write!(f, "backend \"s3\" block in {}", p.display()),
            Source::LocalBlock(p) => write!(f, "backend \"local\" block in {}", p.display()),
            Source::OtherBlock(kind, p) => write!(f, "backend \"{kind}\" block in {}", p.display()),
            Source::TerraformInit(p) => write!(f, "terraform init: {}", p.display()),
            Source::Manifest(p, label) => write!(f, "manifest {}: label {label}", p.display()),
            Source::Env(v) => write!(f, "environment {v}"),
            Source::Prompt => write!(f, "prompt"),
            Source::Default(why) => write!(f, "default ({why})"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// One resolved setting, for `tfsync config`. Never a secret.
#[derive(Debug, Clone, Serialize)]
pub struct Resolved {
    pub name: &'static str,
    pub value: String,
    pub source: Source,
}
