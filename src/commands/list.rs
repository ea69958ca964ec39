//! `tfsync list`: the workspaces of the configured key, as `terraform
//! workspace list` finds them, each with its lock and a state summary.
//! One LIST of `<workspace_key_prefix>/`, then per workspace one GET of the
//! state and, when a lock object exists, one GET of the lock.

use super::Ctx;
use super::table::{self, current_json};
use crate::error::Error;
use crate::output::escape_for_terminal as esc;
use crate::store::{GetResult, StoreError};
use crate::tfstate::guard::LockSet;
use crate::tfstate::keys;
use crate::tfstate::lock::{self as tflock, Current};
use crate::tfstate::state::{self, StateInfo};
use serde_json::{Value, json};
use std::collections::HashSet;

pub async fn run(ctx: &Ctx) -> Result<(), Error> {
    let store = ctx.store.as_ref();
    let cfg = &ctx.config;
    let listed = store.list(&cfg.workspace_list_prefix()).await?;
    let present: HashSet<&str> = listed.iter().map(|m| m.key.as_str()).collect();
    let names = cfg.workspace_names(listed.iter().map(|m| m.key.as_str()));

    let mut entries = Vec::new();
    for name in names {
        let state_key = cfg.state_key_of(&name);
        let lock_key = keys::lock_key(&state_key);
        // The listing already says whether a non-default workspace has a
        // .tflock; with a DynamoDB table its lock item may hold it alone
        // (and the local backend's lock is no object at all).
        let lock = if store.lock_table().is_some()
            || store.as_local().is_some()
            || store.as_azure().is_some()
            || store.as_gcs().is_some()
        {
            LockSet::new(store, &state_key).holder().await?.1
        } else if name == keys::DEFAULT_WORKSPACE || present.contains(lock_key.as_str()) {
            tflock::read(store, &state_key).await?
        } else {
            Current::Unlocked
        };
        let got = match store.get(&state_key).await {
            Ok(g) => Some(g),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => return Err(e.into()),
        };
        entries.push(Entry {
            current: name == cfg.workspace,
            name,
            state_key,
            lock,
            state: got,
        });
    }

    if ctx.out.json() {
        ctx.out.emit_json(&json!({
            "bucket": store.bucket(),
            "key": cfg.key,
            "workspace_key_prefix": cfg.workspace_key_prefix,
            "workspaces": entries.iter().map(Entry::json).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    let rows: Vec<Vec<String>> = entries.iter().map(Entry::row).collect();
    ctx.out.data(table::render(
        &[
            "  WORKSPACE",
            "LOCK",
            "HOLDER",
            "LOCK AGE",
            "SERIAL",
            "SIZE",
            "LAST MODIFIED",
            "STATE KEY",
        ],
        &rows,
    ));
    Ok(())
}

struct Entry {
    name: String,
    current: bool,
    state_key: String,
    lock: Current,
    state: Option<GetResult>,
}

impl Entry {
    fn summary(&self) -> Option<Value> {
        let g = self.state.as_ref()?;
        let mut v = json!({
            "size": g.bytes.len(),
            "etag": g.meta.etag,
            "last_modified": g.meta.last_modified.map(|t| t.to_rfc3339()),
            "serial": null,
            "lineage": null,
            "encrypted": false,
        });
        match state::parse(&g.bytes) {
            Ok(StateInfo::Plain(s)) => {
                v["serial"] = json!(s.serial);
                v["lineage"] = json!(s.lineage);
            }
            Ok(StateInfo::Encrypted { .. }) => v["encrypted"] = json!(true),
            Err(reason) => v["invalid"] = json!(reason),
        }
        Some(v)
    }

    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "current": self.current,
            "state_key": self.state_key,
            "locked": !matches!(self.lock, Current::Unlocked),
            "lock": current_json(&self.lock),
            "state": self.summary(),
        })
    }

    fn row(&self) -> Vec<String> {
        let mark = if self.current { "* " } else { "  " };
        let (lock, holder, age) = match &self.lock {
            Current::Unlocked => ("unlocked".into(), "-".into(), "-".into()),
            Current::Locked { info, .. } => (
                "LOCKED".into(),
                format!("{} ({})", esc(&info.who), esc(&info.operation)),
                table::age_cell(info),
            ),
            Current::Unreadable { .. } => ("UNREADABLE".into(), "?".into(), "?".into()),
        };
        let s = self.summary();
        let field = |k: &str| match s.as_ref().map(|v| &v[k]) {
            None | Some(Value::Null) => "-".to_string(),
            Some(Value::String(x)) => x.clone(),
            Some(other) => other.to_string(),
        };
        let serial = match &s {
            None => "no state".into(),
            Some(v) if v["encrypted"] == json!(true) => "encrypted".into(),
            Some(_) => field("serial"),
        };
        vec![
            format!("{mark}{}", esc(&self.name)),
            lock,
            holder,
            age,
            serial,
            field("size"),
            field("last_modified"),
            esc(&self.state_key).into_owned(),
        ]
    }
}
