//! Plain-text tables for the operator views, and the JSON shape of a lock
//! shared by `list`, `locks` and `force-unlock --all`.

use super::Ctx;
use crate::duration::short_duration;
use crate::output::escape_for_terminal as esc;
use crate::tfstate::lock::{Current, LockInfo, go_rfc3339_nano};
use crate::tfstate::scan::FoundLock;
use serde_json::{Value, json};

/// Left-aligned columns separated by two spaces; the last column is not padded.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                if i + 1 == n {
                    c.to_string()
                } else {
                    format!("{c:<w$}", w = widths[i])
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    let mut out = vec![line(header.to_vec())];
    for row in rows {
        out.push(line(row.iter().map(String::as_str).collect()));
    }
    out.join("\n")
}

/// A lock's fields for `--output json` (snake_case, stable).
pub fn lock_fields(info: &LockInfo) -> Value {
    json!({
        "id": info.id,
        "operation": info.operation,
        "info": info.info,
        "who": info.who,
        "version": info.version,
        "created": go_rfc3339_nano(&info.created),
        "age_seconds": info.age().as_secs(),
        "path": info.path,
    })
}

/// `lock_fields`, or `{"unreadable": reason}`, or null.
pub fn current_json(current: &Current) -> Value {
    match current {
        Current::Unlocked => Value::Null,
        Current::Locked { info, .. } => lock_fields(info),
        Current::Unreadable { reason, .. } => json!({ "unreadable": reason }),
    }
}

/// Age for a table cell.
pub fn age_cell(info: &LockInfo) -> String {
    short_duration(info.age())
}

/// The JSON of one found lock: where it is, and what it says.
pub fn lock_entry_json(ctx: &Ctx, l: &FoundLock) -> serde_json::Value {
    let mut v = json!({
        "lock_key": l.lock_key,
        "state_key": l.state_key,
        "location": ctx.store.location(&l.lock_key),
        "last_modified": l.meta.last_modified.map(|t| t.to_rfc3339()),
    });
    v["lock"] = if l.has_tflock {
        current_json(&l.current)
    } else {
        Value::Null
    };
    // With a lock table: the state's DynamoDB lock item, and how it and the
    // .tflock agree.
    if let (Some(item), Some(table)) = (&l.item, ctx.store.lock_table()) {
        let id = crate::tfstate::dynamo::lock_id(ctx.store.bucket(), &l.state_key);
        v["dynamodb"] = json!({
            "lock_id": id,
            "location": table.location(&id),
            "lock": current_json(item),
        });
        v["pair"] = json!(l.pair().map(|p| p.as_str()));
    }
    v
}

/// A table of found locks, oldest first as listed; with a lock table, a
/// last column says which records hold each lock.
pub fn locks_table(found: &[FoundLock]) -> String {
    let pairs = found.iter().any(|l| l.item.is_some());
    let rows: Vec<Vec<String>> = found
        .iter()
        .map(|l| {
            let mut row = lock_row(l);
            if pairs {
                row.push(l.pair().map_or("-", |p| p.cell()).to_string());
            }
            row
        })
        .collect();
    let mut header = vec!["AGE", "WHO", "OPERATION", "CREATED", "STATE KEY", "ID"];
    if pairs {
        header.push("HELD IN");
    }
    render(&header, &rows)
}

fn lock_row(l: &FoundLock) -> Vec<String> {
    match &l.current {
        Current::Locked { info, .. } => vec![
            age_cell(info),
            esc(&info.who).into_owned(),
            esc(&info.operation).into_owned(),
            go_rfc3339_nano(&info.created),
            esc(&l.state_key).into_owned(),
            esc(&info.id).into_owned(),
        ],
        Current::Unreadable { reason, .. } => vec![
            "?".into(),
            "?".into(),
            format!("UNREADABLE: {}", esc(reason)),
            "-".into(),
            esc(&l.state_key).into_owned(),
            "-".into(),
        ],
        Current::Unlocked => vec![],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_columns() {
        let t = super::render(
            &["A", "BB", "C"],
            &[vec!["xxx".into(), "y".into(), "z".into()]],
        );
        assert_eq!(t, "A    BB  C\nxxx  y   z");
    }
}
