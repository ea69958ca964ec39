//! Durations are bounded when they are parsed: a huge `--wait`,
//! `--lock-timeout`, `--older-than`, `--retry-*-wait` or `TFSYNC_RETRY_*`
//! is a usage error (exit 2) naming the limit, never a panic (exit 101,
//! "overflow when adding duration to instant"). The binary runs on a
//! directory store (`--dir`), so no server is needed.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

const U64_MAX: &str = "18446744073709551615";
const I64_MAX_SECS: &str = "9223372036854775807s";

fn tfsync(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("--dir")
        .arg(dir)
        .args(["--key", "net/terraform.tfstate"]);
    cmd
}

fn state_file(dir: &Path) -> std::path::PathBuf {
    let f = dir.join("s.tfstate");
    std::fs::write(
        &f,
        r#"{"version":4,"terraform_version":"1.11.0","serial":1,"lineage":"durations","outputs":{},"resources":[]}"#,
    )
    .expect("write state");
    f
}

fn usage_error_naming_the_limit(cmd: &mut Command) {
    cmd.timeout(std::time::Duration::from_secs(60))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("limit of 1 year"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn lock_wait_beyond_the_limit_is_a_usage_error() {
    let d = tempfile::tempdir().expect("tmp");
    for wait in [U64_MAX, I64_MAX_SECS, "2y", "31557601"] {
        usage_error_naming_the_limit(tfsync(d.path()).args(["lock", "--wait", wait]));
    }
    // Nothing was locked.
    assert!(!d.path().join("net/terraform.tfstate.tflock").exists());
}

#[test]
fn lock_timeouts_beyond_the_limit_are_usage_errors() {
    let d = tempfile::tempdir().expect("tmp");
    let file = state_file(d.path());
    usage_error_naming_the_limit(
        tfsync(d.path())
            .args(["push", "--lock-timeout", U64_MAX])
            .arg(&file),
    );
    let dest = tempfile::tempdir().expect("tmp");
    let to = format!("file://{}", dest.path().display());
    usage_error_naming_the_limit(tfsync(d.path()).args([
        "migrate",
        "--to",
        &to,
        "--lock-timeout",
        I64_MAX_SECS,
    ]));
    usage_error_naming_the_limit(tfsync(d.path()).args([
        "restore",
        "--from",
        &to,
        "--lock-timeout",
        I64_MAX_SECS,
    ]));
    assert!(!d.path().join("net/terraform.tfstate").exists());
}

#[test]
fn ages_and_retry_waits_beyond_the_limit_are_usage_errors() {
    let d = tempfile::tempdir().expect("tmp");
    usage_error_naming_the_limit(tfsync(d.path()).args(["locks", "--older-than", U64_MAX]));
    usage_error_naming_the_limit(tfsync(d.path()).args([
        "force-unlock",
        "--all",
        "--yes",
        "--older-than",
        U64_MAX,
    ]));
    usage_error_naming_the_limit(tfsync(d.path()).args(["--retry-max-wait", U64_MAX, "status"]));
    usage_error_naming_the_limit(tfsync(d.path()).args(["--retry-min-wait", "3y", "status"]));
}

#[test]
fn retry_waits_from_the_environment_are_bounded_too() {
    let d = tempfile::tempdir().expect("tmp");
    for var in ["TFSYNC_RETRY_MIN_WAIT", "TFSYNC_RETRY_MAX_WAIT"] {
        let mut cmd = tfsync(d.path());
        cmd.env(var, U64_MAX).arg("status");
        usage_error_naming_the_limit(&mut cmd);
        tfsync(d.path())
            .env(var, U64_MAX)
            .arg("status")
            .assert()
            .stderr(predicate::str::contains(var));
    }
}

#[test]
fn the_limit_itself_is_accepted() {
    let d = tempfile::tempdir().expect("tmp");
    let file = state_file(d.path());
    // A free lock is taken at once, whatever the wait.
    let out = tfsync(d.path())
        .args(["lock", "--wait", "1y"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let id = String::from_utf8(out).expect("utf-8").trim().to_string();
    assert!(!id.is_empty());
    tfsync(d.path()).args(["unlock", &id]).assert().code(0);
    tfsync(d.path())
        .args(["push", "--lock-timeout", "8766h"])
        .arg(&file)
        .assert()
        .code(0);
    tfsync(d.path())
        .args(["--retry-max-wait", "1y", "locks", "--older-than", "1y"])
        .assert()
        .code(0);
}
