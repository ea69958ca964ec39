//! Which workspaces a bucket holds for one state key, the way Terraform's s3
//! backend finds them (`terraform workspace list`): `default` always, then
//! every `W` whose state is exactly `<workspace_key_prefix>/W/<key>` (or
//! `W/<key>` with an empty prefix), sorted by name.

use super::keys::{self, DEFAULT_WORKSPACE};

/// The prefix to list to find non-default workspaces.
pub fn list_prefix(workspace_key_prefix: &str) -> String {
    if workspace_key_prefix.is_empty() {
        String::new()
    } else {
        format!("{workspace_key_prefix}/")
    }
}

/// The workspace whose state is `object_key`, if it is one (Terraform's
/// `keyEnv`): the part between the prefix and the key, with no `/` in it.
pub fn workspace_of(object_key: &str, key: &str, workspace_key_prefix: &str) -> Option<String> {
    let rest = object_key.strip_prefix(&list_prefix(workspace_key_prefix))?;
    let (name, tail) = rest.split_once('/')?;
    (tail == key && !name.is_empty() && name != DEFAULT_WORKSPACE).then(|| name.to_string())
}

/// `default` first, then the other workspaces found in `object_keys`, sorted
/// and without duplicates.
pub fn names<'a>(
    object_keys: impl IntoIterator<Item = &'a str>,
    key: &str,
    workspace_key_prefix: &str,
) -> Vec<String> {
    let mut found: Vec<String> = object_keys
        .into_iter()
        .filter_map(|k| workspace_of(k, key, workspace_key_prefix))
        .filter(|w| keys::is_listed_workspace(w))
        .collect();
    found.sort();
    found.dedup();
    let mut out = vec![DEFAULT_WORKSPACE.to_string()];
    out.extend(found);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            names(objects, "app/terraform.tfstate", "env:"),
            ["default", "dev", "prod"]
        );
        let flat = [
            "dev/k.tfstate",
            "k.tfstate",
            "x/y/k.tfstate",
            "qa/k.tfstate",
        ];
        assert_eq!(names(flat, "k.tfstate", ""), ["default", "dev", "qa"]);
        assert_eq!(names([], "k.tfstate", "env:"), ["default"]);
        assert_eq!(
            workspace_of("workspaces/p/k", "k", "workspaces").as_deref(),
            Some("p")
        );
        assert_eq!(workspace_of("workspacesx/p/k", "k", "workspaces"), None);
    }
}
