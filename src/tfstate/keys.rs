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

/// Which backend's rule maps a workspace to its state's key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Layout {
    /// Terraform's `backend "s3"`: the default workspace at `<key>`, `W` at
    /// `<workspace_key_prefix>/W/<key>`.
    #[default]
    S3,
    /// Terraform's `backend "oss"` (`internal/backend/remote-state/oss/
    /// backend_state.go`, `stateFile`: `path.Join(prefix, key)`, and
    /// `path.Join(prefix, W, key)`): the default workspace under the prefix
    /// too. Its lock lives in Alibaba TableStore, never in a `.tflock`.
    Oss,
    /// Terraform's `backend "local"` (`internal/backend/local/backend.go`,
    /// `StatePaths`): the default workspace at `path` (the key), `W` at
    /// `<workspace_dir>/W/terraform.tfstate` (the prefix is `workspace_dir`).
    Local,
    /// Terraform's `backend "azurerm"` (`remote-state/azure/backend_state.go`,
    /// `keyEnvPrefix`): the default workspace at `<key>`, `W` at
    /// `<key>env:W` (no prefix).
    Azure,
    /// Terraform's `backend "gcs"` (`remote-state/gcs/backend_state.go`,
    /// `stateFile`: `path.Join(prefix, W + ".tfstate")`): every workspace,
    /// `default` too, at `<prefix>/<W>.tfstate` (the key is unused).
    Gcs,
}

/// azurerm's `keyEnvPrefix`.
pub const AZURE_ENV_PREFIX: &str = "env:";

/// How one side lays out the states of one configuration's workspaces: a
/// backend's rule with its key and prefix. Every mapping of a workspace to
/// an object key, and back from a listing, goes through this (the
/// configured backend, each side of `migrate`). A new backend is one arm
/// of [`StateLayout::state_key`]: the listing rules follow from it (every
/// layout puts `W` between a fixed head and tail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLayout {
    pub layout: Layout,
    /// The default workspace's key (s3, oss, azurerm: the backend `key`;
    /// local: `path`).
    pub key: String,
    /// s3: `workspace_key_prefix`; oss: `prefix`; local: `workspace_dir`;
    /// gcs: `prefix`; azurerm: unused.
    pub prefix: String,
}

/// A workspace name no real one can be (`validate_workspace` refuses
/// control characters): where it lands in a key shows the layout's head and
/// tail.
const MARKER: &str = "\u{1}";

impl StateLayout {
    pub fn new(layout: Layout, key: impl Into<String>, prefix: impl Into<String>) -> Self {
        StateLayout {
            layout,
            key: key.into(),
            prefix: prefix.into(),
        }
    }

    /// The key of the state of `workspace`.
    pub fn state_key(&self, workspace: &str) -> String {
        let (key, prefix) = (self.key.as_str(), self.prefix.as_str());
        let default = workspace == DEFAULT_WORKSPACE;
        match self.layout {
            Layout::S3 => state_key(key, workspace, prefix),
            Layout::Oss => state_key_in(Layout::Oss, key, workspace, prefix),
            Layout::Local if default => key.to_string(),
            Layout::Local => {
                state_key(crate::store::local::WORKSPACE_STATE_NAME, workspace, prefix)
            }
            Layout::Azure if default => key.to_string(),
            Layout::Azure => format!("{key}{AZURE_ENV_PREFIX}{workspace}"),
            Layout::Gcs if prefix.is_empty() => format!("{workspace}{STATE_SUFFIX}"),
            Layout::Gcs => format!("{prefix}/{workspace}{STATE_SUFFIX}"),
        }
    }

    /// What comes before and after a non-default workspace's name in its key.
    fn head_tail(&self) -> (String, String) {
        let k = self.state_key(MARKER);
        match k.split_once(MARKER) {
            Some((h, t)) => (h.to_string(), t.to_string()),
            None => (k, String::new()),
        }
    }

    /// The prefix to list to find the non-default workspaces.
    pub fn list_prefix(&self) -> String {
        self.head_tail().0
    }

    /// The workspace (not `default`) whose state is `object_key`, if it is
    /// one: what is between the head and the tail, with no `/` in it.
    pub fn workspace_of(&self, object_key: &str) -> Option<String> {
        let (head, tail) = self.head_tail();
        let name = object_key.strip_prefix(&head)?.strip_suffix(&tail)?;
        (!name.is_empty() && !name.contains('/') && name != DEFAULT_WORKSPACE)
            .then(|| name.to_string())
    }

    /// `default` first, then the other workspaces found in `object_keys`
    /// (those [`is_listed_workspace`] accepts), sorted, without duplicates.
    pub fn names<'a>(&self, object_keys: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        let mut found: Vec<String> = object_keys
            .into_iter()
            .filter_map(|k| self.workspace_of(k))
            .filter(|w| is_listed_workspace(w))
            .collect();
        found.sort();
        found.dedup();
        let mut out = vec![DEFAULT_WORKSPACE.to_string()];
        out.extend(found);
        out
    }

    /// The keys of workspace `<W>` as a pattern, for messages.
    pub fn pattern(&self) -> String {
        self.state_key("<W>")
    }
}

/// The key of the state of `workspace` in `layout`.
pub fn state_key_in(layout: Layout, key: &str, workspace: &str, prefix: &str) -> String {
    match layout {
        Layout::Oss if workspace == DEFAULT_WORKSPACE && !prefix.is_empty() => {
            format!("{prefix}/{key}")
        }
        Layout::Oss | Layout::S3 => state_key(key, workspace, prefix),
        Layout::Local | Layout::Azure | Layout::Gcs => {
            StateLayout::new(layout, key, prefix).state_key(workspace)
        }
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

    /// Terraform's s3 `workspace list`: exactly `<prefix>/W/<key>`.
    #[test]
    fn finds_workspaces_like_terraform() {
        let objects = [
            "app/terraform.tfstate",
            "env:/prod/app/terraform.tfstate",
            "env:/prod/app/terraform.tfstate.tflock",
            "env:/dev/app/terraform.tfstate",
            "env:/dev/other/terraform.tfstate",
            "env:/a/b/app/terraform.tfstate",
            "env:/default/app/terraform.tfstate",
            "env:/stage/app/terraform.tfstate.tflock",
        ];
        let s3 = |k: &str, p: &str| StateLayout::new(Layout::S3, k, p);
        assert_eq!(
            s3("app/terraform.tfstate", "env:").names(objects),
            ["default", "dev", "prod"]
        );
        let flat = [
            "dev/k.tfstate",
            "k.tfstate",
            "x/y/k.tfstate",
            "qa/k.tfstate",
        ];
        assert_eq!(s3("k.tfstate", "").names(flat), ["default", "dev", "qa"]);
        assert_eq!(s3("k.tfstate", "env:").names([]), ["default"]);
        assert_eq!(
            s3("k", "workspaces")
                .workspace_of("workspaces/p/k")
                .as_deref(),
            Some("p")
        );
        assert_eq!(s3("k", "workspaces").workspace_of("workspacesx/p/k"), None);
    }

    /// Each backend's layout, and its listing rule derived from it.
    #[test]
    fn layouts_of_every_backend() {
        let s3 = StateLayout::new(Layout::S3, "net/t.tfstate", "env:");
        assert_eq!(s3.state_key("default"), "net/t.tfstate");
        assert_eq!(s3.state_key("dev"), "env:/dev/net/t.tfstate");
        assert_eq!(s3.list_prefix(), "env:/");
        assert_eq!(
            s3.workspace_of("env:/dev/net/t.tfstate").as_deref(),
            Some("dev")
        );
        assert_eq!(s3.workspace_of("env:/a/b/net/t.tfstate"), None);
        assert_eq!(s3.workspace_of("env:/default/net/t.tfstate"), None);
        assert_eq!(s3.workspace_of("env:/dev/net/t.tfstate.tflock"), None);
        let flat = StateLayout::new(Layout::S3, "t", "");
        assert_eq!(
            (flat.list_prefix(), flat.state_key("w")),
            ("".into(), "w/t".into())
        );
        let oss = StateLayout::new(Layout::Oss, "t", "p");
        assert_eq!(oss.state_key("default"), "p/t");
        assert_eq!(oss.workspace_of("p/dev/t").as_deref(), Some("dev"));
        let local = StateLayout::new(Layout::Local, "terraform.tfstate", "terraform.tfstate.d");
        assert_eq!(local.state_key("default"), "terraform.tfstate");
        assert_eq!(
            local.state_key("dev"),
            "terraform.tfstate.d/dev/terraform.tfstate"
        );
        assert_eq!(local.list_prefix(), "terraform.tfstate.d/");
        let local2 = StateLayout::new(Layout::Local, "states/main.tfstate", "ws");
        assert_eq!(local2.state_key("qa"), "ws/qa/terraform.tfstate");
        assert_eq!(
            local2.workspace_of("ws/qa/terraform.tfstate").as_deref(),
            Some("qa")
        );
        assert_eq!(local2.workspace_of("ws/qa/main.tfstate"), None);
        let az = StateLayout::new(Layout::Azure, "net/t.tfstate", "");
        assert_eq!(az.state_key("default"), "net/t.tfstate");
        assert_eq!(az.state_key("dev"), "net/t.tfstateenv:dev");
        assert_eq!(az.list_prefix(), "net/t.tfstateenv:");
        let gcs = StateLayout::new(Layout::Gcs, "", "stacks/net");
        assert_eq!(gcs.state_key("default"), "stacks/net/default.tfstate");
        assert_eq!(gcs.state_key("dev"), "stacks/net/dev.tfstate");
        assert_eq!(gcs.list_prefix(), "stacks/net/");
        assert_eq!(
            gcs.names([
                "stacks/net/default.tfstate",
                "stacks/net/dev.tfstate",
                "stacks/net/dev.tflock",
                "stacks/net/sub/x.tfstate",
            ]),
            ["default", "dev"]
        );
        let gcs_root = StateLayout::new(Layout::Gcs, "", "");
        assert_eq!(gcs_root.state_key("qa"), "qa.tfstate");
        assert_eq!(az.pattern(), "net/t.tfstateenv:<W>");
        assert_eq!(
            az.names([
                "net/t.tfstate",
                "net/t.tfstateenv:b",
                "net/t.tfstateenv:a",
                "net/t.tfstateenv:x/y",
                "other"
            ]),
            ["default", "a", "b"]
        );
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
