//! `tfsync outputs [NAME]`: the state's root outputs like `terraform output`.
//! One GET of the state.

use super::Ctx;
use crate::cli::OutputsArgs;
use crate::error::Error;
use crate::store::StoreError;
use crate::tfstate::outputs::{self, Output, render_hcl};
use serde_json::{Map, Value, json};
use std::io::Write;

const MASK: &str = "<sensitive>";

pub async fn run(ctx: &Ctx, args: OutputsArgs) -> Result<(), Error> {
    let location = ctx.state_location();
    let got = match ctx.store.get(&ctx.config.state_key()).await {
        Err(StoreError::NotFound { location }) => return Err(Error::StateNotFound { location }),
        other => other?,
    };
    let all = outputs::parse(&got.bytes).map_err(|reason| Error::InvalidState {
        what: location.clone(),
        reason,
    })?;

    let Some(name) = &args.name else {
        if ctx.out.json() {
            let mut m = Map::new();
            for o in &all {
                let hidden = o.sensitive && !args.show_sensitive;
                m.insert(
                    o.name.clone(),
                    json!({
                        "sensitive": o.sensitive,
                        "type": o.r#type,
                        "value": if hidden { Value::Null } else { o.value.clone() },
                    }),
                );
            }
            ctx.out.emit_json(&Value::Object(m));
        } else if all.is_empty() {
            ctx.out.warn(format!(
                "no outputs found in {location}: the root module declares none, or it was never applied"
            ));
        } else {
            let text: Vec<String> = all
                .iter()
                .map(|o| format!("{} = {}", o.name, shown(o, args.show_sensitive)))
                .collect();
            ctx.out.data(text.join("\n"));
            if all.iter().any(|o| o.sensitive) && !args.show_sensitive {
                ctx.out
                    .note("sensitive values are masked; pass --show-sensitive to print them");
            }
        }
        return Ok(());
    };

    let Some(o) = all.iter().find(|o| &o.name == name) else {
        return Err(Error::OutputNotFound {
            name: name.clone(),
            location,
            known: all.iter().map(|o| o.name.clone()).collect(),
        });
    };
    let hidden = o.sensitive && !args.show_sensitive;
    if hidden && (args.raw || ctx.out.json()) {
        return Err(Error::Output(format!(
            "output {name:?} is sensitive; pass --show-sensitive to print its value"
        )));
    }
    if args.raw {
        let text = match &o.value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => {
                return Err(Error::Output(format!(
                    "output {name:?} is not a string, number or bool; --raw prints only those. Use --output json for it"
                )));
            }
        };
        // No trailing newline, as `terraform output -raw`.
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(text.as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| Error::io("standard output", e));
    }
    if ctx.out.json() {
        ctx.out.emit_json(&o.value);
    } else {
        ctx.out.data(shown(o, args.show_sensitive));
        if hidden {
            ctx.out
                .note("this value is sensitive; pass --show-sensitive to print it");
        }
    }
    Ok(())
}

fn shown(o: &Output, show_sensitive: bool) -> String {
    if o.sensitive && !show_sensitive {
        MASK.into()
    } else {
        render_hcl(&o.value, 0)
    }
}
