//! Object keys of states and locks, as Terraform's s3 backend lays them out.
//!
//! - default workspace: state at `<key>`, lock at `<key>.tflock`;
//! - workspace `W`: state at `<workspace_key_prefix>/W/<key>` (or `W/<key>`
//!   with an empty prefix), lock beside it.

pub const DEFAULT_WORKSPACE: &str = "default";
pub const DEFAULT_WORKSPACE_KEY_PREFIX: &str = "env:";
pub const LOCK_SUFFIX: &str = ".tflock";
/// Terraform's gcs backend: a workspace's state is `<prefix>/<W>.tfstate`.
pub const STATE_SUFFIX: &str = ".tfstate";

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

/// Where a backend keeps its workspaces' states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// Terraform's `backend "s3"`: the default workspace at `<key>`.
    #[default]
    S3,
    /// Terraform's `backend "oss"` (`internal/backend/remote-state/oss/
    /// backend_state.go`, `stateFile`: `path.Join(prefix, key)`, and
    /// `path.Join(prefix, W, key)`): the default workspace under the prefix
    /// too. Its lock lives in Alibaba TableStore, never in a `.tflock`.
    Oss,
}

/// The key of the state of `workspace` in `layout`.
pub fn state_key_in(layout: Layout, key: &str, workspace: &str, prefix: &str) -> String {
    match layout {
        Layout::Oss if workspace == DEFAULT_WORKSPACE && !prefix.is_empty() => {
            format!("{prefix}/{key}")
        }
        _ => state_key(key, workspace, prefix),
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

/// The characters Go's `url.PathEscape` leaves unchanged: the unreserved
/// ones (ASCII letters, digits, `- . _ ~`) and the sub-delimiters it keeps
/// in a path segment (`$ & + = : @`). It escapes `! ' ( ) * , ;` and every
/// other character.
const PATH_SEGMENT_SAFE: &str = "-._~$&+=:@";

/// Terraform's rule for a workspace name (hashicorp/terraform
/// `internal/command/arguments/workspace.go`, `ValidWorkspaceName`: not
/// empty and `name == url.PathEscape(name)`; checked by `workspace new`,
/// `workspace select` and `TF_WORKSPACE`). tfsync also refuses `.` and `..`,
/// which HTTP clients and servers may normalise away.
pub fn validate_workspace(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the workspace name is empty".into());
    }
    if name == "." || name == ".." {
        return Err(format!(
            "the workspace name {name:?} is not allowed: it is a relative path segment"
        ));
    }
    let bad: Vec<char> = name
        .chars()
        .filter(|c| !(c.is_ascii_alphanumeric() || PATH_SEGMENT_SAFE.contains(*c)))
        .fold(Vec::new(), |mut v, c| {
            if !v.contains(&c) {
                v.push(c);
            }
            v
        });
    if bad.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = bad.iter().map(|c| format!("{c:?}")).collect();
    Err(format!(
        "the workspace name {name:?} is not allowed: it contains {}. Terraform accepts only names that URL path escaping leaves unchanged (ASCII letters, digits and - . _ ~ $ & + = : @), so it could neither create nor select this workspace; choose a name made of those characters",
        shown.join(", ")
    ))
}

/// Whether a name found in a listing is shown as a workspace (`list`,
/// `migrate --all-workspaces`): Terraform's names, and also those an older
/// tfsync accepted (`! ' ( ) * , ;`), so that such a workspace is still
/// listed and moved rather than silently left behind.
pub fn is_listed_workspace(name: &str) -> bool {
    validate_workspace(name).is_ok()
        || (!name.is_empty()
            && name != "."
            && name != ".."
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c)))
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

    /// Terraform's oss backend: `path.Join(prefix, key)` for the default
    /// workspace, `path.Join(prefix, W, key)` for the others.
    #[test]
    fn oss_layout() {
        let oss = |k: &str, w: &str, p: &str| state_key_in(Layout::Oss, k, w, p);
        assert_eq!(
            oss("terraform.tfstate", "default", "env:"),
            "env:/terraform.tfstate"
        );
        assert_eq!(
            oss("terraform.tfstate", "dev", "env:"),
            "env:/dev/terraform.tfstate"
        );
        assert_eq!(oss("net/t.tfstate", "default", "a/b"), "a/b/net/t.tfstate");
        assert_eq!(oss("net/t.tfstate", "dev", "a/b"), "a/b/dev/net/t.tfstate");
        assert_eq!(oss("t.tfstate", "default", ""), "t.tfstate");
        assert_eq!(oss("t.tfstate", "dev", ""), "dev/t.tfstate");
        // The s3 layout is unchanged.
        assert_eq!(state_key_in(Layout::S3, "t", "default", "env:"), "t");
        assert_eq!(state_key_in(Layout::S3, "t", "dev", "env:"), "env:/dev/t");
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

    /// Terraform's rule: `url.PathEscape(name) == name`.
    #[test]
    fn workspace_names_follow_go_path_escape() {
        for ok in [
            "prod",
            "prod-eu_1",
            "v1.2",
            "a~b",
            "a$b",
            "a&b",
            "a+b",
            "a=b",
            "a:b",
            "a@b",
            "ABC019",
            "..a",
            "-",
        ] {
            assert!(validate_workspace(ok).is_ok(), "{ok}");
            assert!(is_listed_workspace(ok), "{ok}");
        }
        for bad in ["a!b", "a'b", "a(b", "a)b", "a*b", "a,b", "a;b"] {
            let err = validate_workspace(bad).expect_err(bad);
            let c = bad.chars().nth(1).unwrap_or_default();
            assert!(err.contains(&format!("{c:?}")), "{err}");
            assert!(err.contains("- . _ ~ $ & + = : @"), "{err}");
            // Still listed, so an older tfsync's workspace is not lost.
            assert!(is_listed_workspace(bad), "{bad}");
        }
        for bad in [
            "", ".", "..", "a/b", "a b", "a?b", "a#b", "a%b", "a\"b", "é", "a\tb", "a[b", "a|b",
        ] {
            assert!(validate_workspace(bad).is_err(), "{bad:?}");
            assert!(!is_listed_workspace(bad), "{bad:?}");
        }
    }
}
