//! The binary without any server: configuration errors, help, exit codes,
//! and the full lock/push/pull cycle on the directory store.

use crate::support::{run, state};

fn tfsync() -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_tfsync"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_EC2_METADATA_DISABLED", "true");
    cmd
}

#[test]
fn missing_settings_are_named_together() {
    let r = run(tfsync().arg("status"));
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stderr.contains("--bucket or TFSYNC_BUCKET"), "{r:?}");
    assert!(r.stderr.contains("--key or TFSYNC_KEY"), "{r:?}");
    let r = run(tfsync().args(["--output", "json", "status"]));
    let v: serde_json::Value = serde_json::from_str(r.stderr.trim()).expect("json error");
    assert_eq!(v["exit_code"], 2);
}

#[test]
fn help_documents_examples_and_exit_codes() {
    let r = run(tfsync().arg("--help"));
    assert_eq!(r.code, 0);
    for needle in [
        "Examples:",
        "Exit codes:",
        "lock held by someone else",
        "TFSYNC_BUCKET",
        "force-unlock",
    ] {
        assert!(r.stdout.contains(needle), "--help lacks {needle:?}");
    }
    for cmd in ["pull", "push", "lock", "unlock", "force-unlock", "status"] {
        let r = run(tfsync().args([cmd, "--help"]));
        assert!(
            r.code == 0 && r.stdout.contains("Example"),
            "{cmd} --help: {r:?}"
        );
    }
}

/// `migrate --help`: the command's own options first, every global option
/// under a global heading after them; `-h` is the short version.
#[test]
fn help_puts_the_commands_options_first() {
    let long = run(tfsync().args(["migrate", "--help"]));
    assert_eq!(long.code, 0, "{long:?}");
    let lines: Vec<&str> = long.stdout.lines().collect();
    let heading_at = |name: &str| {
        lines
            .iter()
            .position(|l| *l == format!("{name}:"))
            .unwrap_or_else(|| panic!("no {name:?} heading: {}", long.stdout))
    };
    let global = heading_at(tfsync::cli::GLOBAL);
    let global_headings = [
        tfsync::cli::GLOBAL,
        tfsync::cli::CONNECTION,
        tfsync::cli::ENCRYPTION,
    ]
    .map(|h| format!("{h}:"));
    let flag_at = |flag: &str| {
        lines
            .iter()
            .position(|l| {
                let l = l.trim_start();
                l.starts_with(&format!("{flag} ")) || l == flag || l.contains(&format!(", {flag}"))
            })
            .unwrap_or_else(|| panic!("{flag} not in migrate --help: {}", long.stdout))
    };
    for own in [
        "--to",
        "--to-key",
        "--all-workspaces",
        "--dry-run",
        "--to-endpoint",
    ] {
        assert!(flag_at(own) < global, "{own} after the global heading");
    }
    let cmd = tfsync::cli::command();
    let globals: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set())
        .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
        .collect();
    assert!(globals.len() > 20, "{globals:?}");
    for g in &globals {
        let at = flag_at(g);
        assert!(at > global, "{g} before the global heading");
        let heading = lines[..at]
            .iter()
            .rev()
            .find(|l| !l.starts_with(' ') && l.ends_with(':'))
            .copied()
            .unwrap_or("");
        assert!(
            global_headings.iter().any(|h| h == heading),
            "{g} under {heading:?}"
        );
    }
    let short = run(tfsync().args(["migrate", "-h"]));
    assert_eq!(short.code, 0, "{short:?}");
    assert!(short.stdout.len() < long.stdout.len());
    assert!(
        short.stdout.contains("--to-key") && short.stdout.contains("tfsync migrate --help"),
        "{short:?}"
    );
    assert!(!short.stdout.contains("Examples:") && long.stdout.contains("Examples:"));
}

/// The completion scripts are accepted by their shells (`bash -n`; `zsh -n`
/// and `fish --no-execute` where installed) and know the commands' options.
#[test]
fn completion_scripts_parse_in_their_shells() {
    let d = tempfile::tempdir().expect("tmp");
    let checks: [(&str, &[&str]); 5] = [
        ("bash", &["bash", "-n"]),
        ("zsh", &["zsh", "-n"]),
        ("fish", &["fish", "--no-execute"]),
        ("powershell", &[]),
        ("elvish", &[]),
    ];
    for (shell, check) in checks {
        let r = run(tfsync().args(["completions", shell]));
        assert_eq!(r.code, 0, "{shell}: {r:?}");
        for needle in ["migrate", "to-key", "force-unlock", "workspace-key-prefix"] {
            assert!(r.stdout.contains(needle), "{shell} script lacks {needle}");
        }
        let Some((prog, args)) = check.split_first() else {
            continue;
        };
        let installed = std::process::Command::new("sh")
            .args(["-c", &format!("command -v {prog}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if !installed {
            eprintln!("NOTE: {prog} is not installed: its completion script was not checked");
            continue;
        }
        let file = d.path().join(format!("tfsync.{shell}"));
        std::fs::write(&file, &r.stdout).expect("write");
        let out = std::process::Command::new(prog)
            .args(args.iter())
            .arg(&file)
            .output()
            .expect("run the shell");
        assert!(
            out.status.success(),
            "{prog} {args:?} refused the script: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // A script for a shell clap does not know is a usage error.
    assert_eq!(run(tfsync().args(["completions", "tcsh"])).code, 2);
}

/// `tfsync man`: roff on stdout (groff accepts it without a warning where
/// installed); `--dir` writes one page per command.
#[test]
fn man_pages() {
    let r = run(tfsync().arg("man"));
    assert_eq!(r.code, 0, "{r:?}");
    let first_macro = r
        .stdout
        .lines()
        .find(|l| l.starts_with('.') && !l.starts_with(".ie") && !l.starts_with(".el"))
        .unwrap_or("");
    assert!(first_macro.starts_with(".TH tfsync 1"), "{first_macro}");
    for needle in [".SH NAME", ".SH SYNOPSIS", "migrate", "completions"] {
        assert!(r.stdout.contains(needle), "man page lacks {needle}");
    }
    let groff = std::process::Command::new("sh")
        .args(["-c", "command -v groff"])
        .output()
        .is_ok_and(|o| o.status.success());
    if groff {
        use std::io::Write;
        let mut child = std::process::Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("groff");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(r.stdout.as_bytes())
            .expect("write");
        let out = child.wait_with_output().expect("groff");
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("NOTE: groff is not installed: the man page was not checked by it");
    }

    let d = tempfile::tempdir().expect("tmp");
    let r = run(tfsync().arg("man").arg("--dir").arg(d.path()));
    assert_eq!(r.code, 0, "{r:?}");
    for page in [
        "tfsync.1",
        "tfsync-migrate.1",
        "tfsync-backup-verify.1",
        "tfsync-man.1",
    ] {
        let text = std::fs::read_to_string(d.path().join(page)).unwrap_or_default();
        assert!(text.contains(".TH tfsync"), "{page}: {text:.200}");
        assert!(r.stdout.contains(page), "{page} not listed: {r:?}");
    }
    let missing = d.path().join("nope");
    let r = run(tfsync().arg("man").arg("--dir").arg(&missing));
    assert_eq!(r.code, 2, "{r:?}");
}

/// `tfsync config | head -1`: a reader that goes away makes no panic.
#[test]
fn a_closed_stdout_is_no_panic() {
    let d = tempfile::tempdir().expect("tmp");
    let mut child = tfsync()
        .arg("--dir")
        .arg(d.path())
        .args(["--key", "k.tfstate", "config"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // A full disk is an error, said once, exit 1.
    if let Ok(full) = std::fs::OpenOptions::new().write(true).open("/dev/full") {
        let out = tfsync()
            .arg("--dir")
            .arg(d.path())
            .args(["--key", "k.tfstate", "config"])
            .stdout(full)
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        assert_eq!(
            stderr.matches("cannot write to stdout").count(),
            1,
            "{stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    for args in [
        &["--bucket", "b", "--key", "k", "lock", "--wait", "soon"][..],
        &["--bucket", "b", "--key", "/k", "status"],
        &[
            "--bucket",
            "b",
            "--key",
            "k",
            "--workspace",
            "a/b",
            "status",
        ],
        &[
            "--bucket",
            "b",
            "--key",
            "k",
            "--endpoint",
            "ftp://x",
            "status",
        ],
        &["frobnicate"],
    ] {
        let r = run(tfsync().args(args));
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
    }
}

#[test]
fn full_cycle_on_a_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("bucket");
    std::fs::create_dir(&store).expect("store dir");
    let t = |args: &[&str]| {
        run(tfsync()
            .env("TFSYNC_DIR", &store)
            .env("TFSYNC_KEY", "app/terraform.tfstate")
            .args(args))
    };
    let f = tmp.path().join("s.tfstate");
    let st = state("dir-lineage", 1, 1);
    std::fs::write(&f, &st).expect("write");
    let fs = f.to_string_lossy().into_owned();

    assert_eq!(t(&["status"]).code, 5, "no state yet");
    assert_eq!(t(&["push", &fs]).code, 0);
    assert_eq!(
        std::fs::read(store.join("app/terraform.tfstate")).expect("stored"),
        st
    );
    let r = t(&["pull"]);
    assert_eq!(r.stdout.as_bytes(), st.as_slice());

    let id = t(&["lock", "--info", "dir test"]).stdout.trim().to_string();
    assert!(store.join("app/terraform.tfstate.tflock").exists());
    let r = t(&["push", &fs]);
    assert_eq!(r.code, 3, "{r:?}");
    let r = t(&["lock", "--wait", "1s"]);
    assert_eq!(r.code, 3, "waited and gave up: {r:?}");
    assert!(r.stderr.contains("waited 1s"), "{r:?}");
    assert_eq!(t(&["unlock", "wrong"]).code, 3);
    let r = t(&["--output", "json", "unlock", &id]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(v["released"]["ID"], id.as_str());
    assert_eq!(v["released"]["Info"], "dir test");
    assert!(!store.join("app/terraform.tfstate.tflock").exists());

    let r = t(&["push", "/nonexistent/x.tfstate"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("/nonexistent/x.tfstate"), "{r:?}");
    let r = t(&["pull", "-o", "/nonexistent/dir/out.tfstate"]);
    assert_eq!(r.code, 1, "{r:?}");
}

/// Ctrl-C while `lock --wait` waits: exit 130, and the holder's lock is left
/// alone (only a lock with our own ID would be released).
#[test]
fn interrupted_wait_leaves_the_holders_lock() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = tmp.path().join("bucket");
    std::fs::create_dir(&store).expect("store dir");
    let t = || {
        let mut c = tfsync();
        c.env("TFSYNC_DIR", &store)
            .env("TFSYNC_KEY", "app/terraform.tfstate");
        c
    };
    let r = run(t().arg("lock"));
    assert_eq!(r.code, 0, "{r:?}");
    let lock_path = store.join("app/terraform.tfstate.tflock");
    let held = std::fs::read(&lock_path).expect("lock");
    let child = t()
        .args(["lock", "--wait", "60s"])
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::thread::sleep(std::time::Duration::from_millis(800));
    // SAFETY: signalling our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("SIGINT") && stderr.contains("no lock was taken"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(&lock_path).expect("lock"),
        held,
        "the holder's lock is untouched"
    );
}

/// Workspace names follow Terraform's rule (`url.PathEscape(name) ==
/// name`): `! ' ( ) * , ;` are refused (exit 2, naming the character and
/// the allowed set, nothing written) from `-w` and from `TF_WORKSPACE`; the
/// characters Go leaves unescaped work end to end; a workspace an older
/// tfsync created with such a name is still listed.
#[test]
fn workspace_names_follow_terraforms_rule() {
    let dir = tempfile::tempdir().expect("tmp");
    let store = dir.path().join("store");
    std::fs::create_dir(&store).expect("mkdir");
    let file = dir.path().join("s.tfstate");
    std::fs::write(&file, state("ws", 1, 1)).expect("write");
    let base = |c: &mut std::process::Command| {
        c.arg("--dir")
            .arg(&store)
            .args(["--key", "app/terraform.tfstate"]);
    };
    for bad in ["a!b", "a'b", "a(b", "a)b", "a*b", "a,b", "a;b"] {
        let mut c = tfsync();
        base(&mut c);
        let r = run(c.args(["-w", bad, "push"]).arg(&file));
        assert_eq!(r.code, 2, "{bad}: {r:?}");
        assert!(
            r.stderr.contains("is not allowed") && r.stderr.contains("- . _ ~ $ & + = : @"),
            "{bad}: {r:?}"
        );
        let mut c = tfsync();
        base(&mut c);
        let r = run(c.env("TF_WORKSPACE", bad).arg("status"));
        assert_eq!(r.code, 2, "TF_WORKSPACE={bad}: {r:?}");
    }
    let written: Vec<_> = walk(&store);
    assert!(written.is_empty(), "{written:?}");

    let good = "a-b.c_d~e$f&g+h=i:j@k";
    let mut c = tfsync();
    base(&mut c);
    let r = run(c.args(["-w", good, "push"]).arg(&file));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        store
            .join("env:")
            .join(good)
            .join("app/terraform.tfstate")
            .is_file(),
        "{:?}",
        walk(&store)
    );
    let mut c = tfsync();
    base(&mut c);
    let r = run(c.args(["-w", good, "pull"]));
    assert_eq!(
        (r.code, r.stdout.as_bytes()),
        (0, &state("ws", 1, 1)[..]),
        "{r:?}"
    );

    // A workspace an older tfsync let through is still listed.
    let old = store.join("env:/x(y)/app");
    std::fs::create_dir_all(&old).expect("mkdir");
    std::fs::write(old.join("terraform.tfstate"), state("ws", 1, 1)).expect("write");
    let mut c = tfsync();
    base(&mut c);
    let r = run(c.args(["--output", "json", "list"]));
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    let names: Vec<&str> = v["workspaces"]
        .as_array()
        .expect("workspaces")
        .iter()
        .filter_map(|w| w["name"].as_str())
        .collect();
    assert_eq!(names, ["default", good, "x(y)"], "{v}");
}

/// Every file under `root`, relative.
fn walk(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap_or(&p).display().to_string());
            }
        }
    }
    out
}
