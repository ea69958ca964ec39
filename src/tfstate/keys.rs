//! Object keys of states and locks, as Terraform's s3 backend lays them out.
//!
//! - default workspace: state at `<key>`, lock at `<key>.tflock`;
//! - workspace `W`: state at `<workspace_key_prefix>/W/<key>` (or `W/<key>`
//!   with an empty prefix), lock beside it.

pub const DEFAULT_WORKSPACE: &str = "default";
pub const DEFAULT_WORKSPACE_KEY_PREFIX: &str = "env:";
pub const LOCK_SUFFIX: &str = ".tflock";

/// The key of the state of `workspace`.
pub fn state_key(key: &str, workspace: &str, workspace_key_prefix: &str) -> String {
    if workspace == DEFAULT_WORKSPACE {
        key.to_string()
    } else if workspace_key_prefix.is_empty() {
        format!("{workspace}/{key}")
    } else {
        format!("{workspace_key_prefix}/{workspace}/{key}")
    }
}

/// The key of the lock object that guards `state_key`.
pub fn lock_key(state_key: &str) -> String {
    format!("{state_key}{LOCK_SUFFIX}")
}

/// Terraform's rule for the backend `key`: not empty, no leading or trailing `/`.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("the state key is empty".into());
    }
    if key.starts_with('/') || key.ends_with('/') {
        return Err(format!(
            "the state key {key:?} must not start or end with '/'"
        ));
    }
    if key
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "the state key {key:?} has an empty, '.' or '..' path segment: HTTP clients and servers may normalise it to another key"
        ));
    }
    if key.chars().any(char::is_control) {
        return Err(format!("the state key {key:?} contains control characters"));
    }
    if key.ends_with(LOCK_SUFFIX) {
        return Err(format!(
            "the state key {key:?} names a lock object, not a state"
        ));
    }
    Ok(())
}

/// Terraform's rule for `workspace_key_prefix`: no leading or trailing `/`.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.starts_with('/') || prefix.ends_with('/') {
        return Err(format!(
            "the workspace key prefix {prefix:?} must not start or end with '/'"
        ));
    }
    if !prefix.is_empty()
        && prefix
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        return Err(format!(
            "the workspace key prefix {prefix:?} has an empty, '.' or '..' path segment"
        ));
    }
    Ok(())
}

/// Terraform accepts workspace names that need no escaping in a URL path
/// segment (`url.PathEscape(name) == name`).
pub fn validate_workspace(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the workspace name {name:?} is not allowed: use letters, digits and -._~!$&'()*+,;=:@ only, no '/'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_paths() {
        assert_eq!(state_key("a/b.tfstate", "default", "env:"), "a/b.tfstate");
        assert_eq!(
            state_key("a/b.tfstate", "dev", "env:"),
            "env:/dev/a/b.tfstate"
        );
        assert_eq!(
            state_key("b.tfstate", "dev", "workspaces"),
            "workspaces/dev/b.tfstate"
        );
        assert_eq!(state_key("b.tfstate", "dev", ""), "dev/b.tfstate");
        assert_eq!(lock_key("env:/dev/b.tfstate"), "env:/dev/b.tfstate.tflock");
    }

    #[test]
    fn validation() {
        assert!(validate_key("x/y.tfstate").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("/x").is_err());
        assert!(validate_key("x/").is_err());
        assert!(validate_key("x.tflock").is_err());
        assert!(validate_key("a/../b").is_err());
        assert!(validate_key("../b").is_err());
        assert!(validate_key("a/./b").is_err());
        assert!(validate_key("a//b").is_err());
        assert!(validate_key("a/b\n").is_err());
        assert!(validate_key("with space/é 雪.tfstate").is_ok());
        assert!(validate_key("a..b/c.tfstate").is_ok());
        assert!(validate_prefix("env:").is_ok());
        assert!(validate_prefix("/env").is_err());
        assert!(validate_workspace("prod-eu_1").is_ok());
        assert!(validate_workspace("a/b").is_err());
        assert!(validate_workspace("a b").is_err());
        assert!(validate_workspace("").is_err());
        assert!(validate_workspace("..").is_err());
        assert!(validate_prefix("a/../b").is_err());
        assert!(validate_prefix("").is_ok());
    }
}
