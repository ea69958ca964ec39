//! The resolution rules, on temporary directories (no server).

use super::*;
use std::collections::HashMap;

fn resolve(opts: GlobalOpts, env: &[(&str, &str)]) -> Result<Config, Error> {
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::resolve(&opts, &move |k| env.get(k).cloned())
}

fn base() -> GlobalOpts {
    GlobalOpts {
        bucket: Some("b".into()),
        key: Some("k.tfstate".into()),
        max_attempts: 4,
        ..Default::default()
    }
}

fn s3(c: &Config) -> &S3Options {
    match &c.target {
        Target::S3(o) => o,
        Target::Dir(_) | Target::Local(_) | Target::Azure(_) | Target::Gcs(_) => {
            panic!("expected S3")
        }
    }
}

#[test]
fn missing_values_are_named_together() {
    let err = resolve(GlobalOpts::default(), &[]).expect_err("error");
    let msg = err.to_string();
    assert!(msg.contains("--bucket or TFSYNC_BUCKET"), "{msg}");
    assert!(msg.contains("--key or TFSYNC_KEY"), "{msg}");
    assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
}

#[test]
fn endpoint_precedence() {
    let env = [
        ("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:2"),
    ];
    let mut o = base();
    o.endpoint = Some("http://127.0.0.1:3".into());
    assert_eq!(
        s3(&resolve(o, &env).expect("ok")).endpoint.as_deref(),
        Some("http://127.0.0.1:3")
    );
    assert_eq!(
        s3(&resolve(base(), &env).expect("ok")).endpoint.as_deref(),
        Some("http://127.0.0.1:1")
    );
    assert_eq!(
        s3(&resolve(base(), &env[1..]).expect("ok"))
            .endpoint
            .as_deref(),
        Some("http://127.0.0.1:2")
    );
    let aws = resolve(base(), &[]).expect("ok");
    assert_eq!(s3(&aws).endpoint, None);
    assert!(
        !s3(&aws).path_style,
        "AWS keeps virtual-host addressing unless asked"
    );
    assert!(
        s3(&resolve(base(), &env).expect("ok")).path_style,
        "custom endpoints are path-style"
    );
}

#[test]
fn dynamodb_table_and_endpoint_precedence() {
    let d = tempfile::tempdir().expect("tmp");
    let tf = |body: &str| {
        std::fs::write(
            d.path().join("main.tf"),
            format!("terraform {{\n  backend \"s3\" {{\n{body}\n  }}\n}}\n"),
        )
        .expect("tf")
    };
    let opts = || {
        let mut o = in_dir(d.path());
        o.bucket = Some("b".into());
        o.key = Some("k".into());
        o
    };
    let env = [
        ("TFSYNC_DYNAMODB_TABLE", "env-table"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1"),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:2"),
    ];
    // No table anywhere: no DynamoDB, whatever the endpoints say.
    tf("    use_lockfile = true");
    let c = resolve(opts(), &env[1..]).expect("ok");
    assert_eq!(c.lock_table, None);
    assert!(c.sources.iter().all(|r| !r.name.starts_with("dynamodb")));
    // The environment, then the backend block, then the flag.
    let t = resolve(opts(), &env)
        .expect("ok")
        .lock_table
        .expect("table");
    assert_eq!(
        (t.table.as_str(), t.endpoint.as_deref()),
        ("env-table", Some("http://127.0.0.1:1"))
    );
    let t = resolve(opts(), &env[2..]).expect("ok").lock_table;
    assert_eq!(t, None, "AWS_ENDPOINT_URL alone names no table");
    tf("    dynamodb_table = \"tf-locks\"\n    dynamodb_endpoint = \"http://127.0.0.1:3\"");
    let c = resolve(opts(), &env).expect("ok");
    let t = c.lock_table.clone().expect("table");
    assert_eq!(
        (t.table.as_str(), t.endpoint.as_deref()),
        ("tf-locks", Some("http://127.0.0.1:3"))
    );
    assert!(
        c.warnings.iter().all(|w| !w.contains("use_lockfile")),
        "with a table, Terraform without use_lockfile is excluded: {:?}",
        c.warnings
    );
    tf(
        "    dynamodb_table = \"tf-locks\"\n    dynamodb_endpoint = \"http://127.0.0.1:3\"\n    endpoints = {\n      dynamodb = \"http://127.0.0.1:4\"\n    }",
    );
    let t = resolve(opts(), &env)
        .expect("ok")
        .lock_table
        .expect("table");
    assert_eq!(
        t.endpoint.as_deref(),
        Some("http://127.0.0.1:4"),
        "endpoints.dynamodb first"
    );
    let mut o = opts();
    o.dynamodb_table = Some("flag-table".into());
    o.dynamodb_endpoint = Some("http://127.0.0.1:5".into());
    let t = resolve(o, &env).expect("ok").lock_table.expect("table");
    assert_eq!(
        (t.table.as_str(), t.endpoint.as_deref()),
        ("flag-table", Some("http://127.0.0.1:5"))
    );
    // Only AWS_ENDPOINT_URL: it is DynamoDB's too, as for the AWS SDKs.
    tf("    dynamodb_table = \"tf-locks\"");
    let t = resolve(opts(), &env[2..])
        .expect("ok")
        .lock_table
        .expect("table");
    assert_eq!(t.endpoint.as_deref(), Some("http://127.0.0.1:2"));
    // A directory store has no table: said, not silently dropped.
    let mut o = opts();
    o.bucket = None;
    o.dir = Some(d.path().to_path_buf());
    let c = resolve(o, &env).expect("dir");
    assert_eq!(c.lock_table, None);
    assert!(
        c.warnings
            .iter()
            .any(|w| w.contains("does not apply to a directory")),
        "{:?}",
        c.warnings
    );
    let mut o = opts();
    o.dynamodb_table = Some(" ".into());
    assert!(matches!(resolve(o, &[]), Err(Error::Config(_))));
}

#[test]
fn region_and_profile_precedence() {
    let env = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_DEFAULT_REGION", "eu-west-2"),
        ("AWS_PROFILE", "ops"),
    ];
    let mut o = base();
    o.region = Some("us-west-2".into());
    assert_eq!(
        s3(&resolve(o, &env).expect("ok")).region.as_deref(),
        Some("us-west-2")
    );
    assert_eq!(
        s3(&resolve(base(), &env).expect("ok")).region.as_deref(),
        Some("eu-west-1")
    );
    assert_eq!(
        s3(&resolve(base(), &env[1..]).expect("ok"))
            .region
            .as_deref(),
        Some("eu-west-2")
    );
    assert_eq!(
        s3(&resolve(base(), &env).expect("ok")).profile.as_deref(),
        Some("ops")
    );
    let mut o = base();
    o.profile = Some("admin".into());
    assert_eq!(
        s3(&resolve(o, &env).expect("ok")).profile.as_deref(),
        Some("admin")
    );
}

#[test]
fn workspace_keys() {
    let mut o = base();
    o.workspace = Some("dev".into());
    assert_eq!(
        resolve(o.clone(), &[]).expect("ok").state_key(),
        "env:/dev/k.tfstate"
    );
    o.workspace_key_prefix = Some("".into());
    assert_eq!(
        resolve(o.clone(), &[]).expect("ok").state_key(),
        "dev/k.tfstate"
    );
    o.workspace = Some("a/b".into());
    assert!(resolve(o, &[]).is_err());
}

#[test]
fn endpoints_are_checked() {
    let mut o = base();
    o.endpoint = Some("ftp://x".into());
    assert!(resolve(o.clone(), &[]).is_err());
    o.endpoint = Some("http://s3.example.com".into());
    assert_eq!(resolve(o.clone(), &[]).expect("ok").warnings.len(), 1);
    o.endpoint = Some("http://[::1]:9000".into());
    assert!(resolve(o.clone(), &[]).expect("ok").warnings.is_empty());
    o.endpoint = Some("https://s3.example.com".into());
    assert!(resolve(o, &[]).expect("ok").warnings.is_empty());
}

/// A directory with every file source.
fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("main.tf"),
        r#"
terraform {
  required_version = ">= 1.11"
  backend "s3" {
    bucket               = "block-bucket"
    key                  = "block/terraform.tfstate"
    endpoints            = { s3 = "http://127.0.0.1:9000" }
    use_path_style       = true
    workspace_key_prefix = "ws"
    use_lockfile         = true
    skip_region_validation = true
  }
}
resource "null_resource" "x" {}
"#,
    )
    .expect("tf");
    std::fs::write(d.path().join("vars.tf"), "variable \"x\" {}\n").expect("tf");
    std::fs::create_dir(d.path().join(".terraform")).expect("dir");
    std::fs::write(
            d.path().join(".terraform/terraform.tfstate"),
            r#"{"version":3,"backend":{"type":"s3","config":{"bucket":"init-bucket","key":"init/terraform.tfstate","region":"eu-north-1","profile":"initprof","endpoints":null,"use_lockfile":true},"hash":1}}"#,
        )
        .expect("init");
    std::fs::write(d.path().join(".terraform/environment"), "staging\n").expect("env");
    d
}

fn manifest(dir: &std::path::Path) -> PathBuf {
    let f = dir.join("manifest.yaml");
    std::fs::write(
        &f,
        r#"apiVersion: aws.openmcf.org/v1
kind: AwsVpc
metadata:
  name: prod-vpc
  labels:
    terraform.openmcf.org/backend.type: s3
    terraform.openmcf.org/backend.bucket: mcf-bucket
    terraform.openmcf.org/backend.object: mcf/legacy.tfstate
    terraform.openmcf.org/backend.region: ap-south-1
    tofu.openmcf.org/backend.bucket: tofu-bucket
    tofu.openmcf.org/backend.endpoint: http://127.0.0.1:9100
spec: {}
"#,
    )
    .expect("manifest");
    f
}

fn source_of<'a>(c: &'a Config, name: &str) -> &'a Source {
    &c.sources
        .iter()
        .find(|r| r.name == name)
        .unwrap_or_else(|| panic!("{name} not resolved: {:?}", c.sources))
        .source
}

fn in_dir(d: &std::path::Path) -> GlobalOpts {
    GlobalOpts {
        chdir: Some(d.to_path_buf()),
        max_attempts: 4,
        ..Default::default()
    }
}

#[test]
fn precedence_across_every_source() {
    let d = project();
    let env = [
        ("TFSYNC_BUCKET", "env-bucket"),
        ("AWS_REGION", "us-west-1"),
        ("TF_WORKSPACE", "fromenv"),
    ];
    // The backend block beats terraform init, the manifest and the environment.
    let mut o = in_dir(d.path());
    o.manifest = Some(manifest(d.path()));
    let c = resolve(o.clone(), &env).expect("ok");
    let s = s3(&c);
    assert_eq!(s.bucket, "block-bucket");
    assert!(matches!(source_of(&c, "bucket"), Source::BackendBlock(p) if p.ends_with("main.tf")));
    assert_eq!(c.key, "block/terraform.tfstate");
    assert_eq!(s.endpoint.as_deref(), Some("http://127.0.0.1:9000"));
    assert!(s.path_style);
    assert!(matches!(
        source_of(&c, "path_style"),
        Source::BackendBlock(_)
    ));
    assert_eq!(c.workspace_key_prefix, "ws");
    // Not in the block: terraform init's record.
    assert_eq!(s.region.as_deref(), Some("eu-north-1"));
    assert!(matches!(source_of(&c, "region"), Source::TerraformInit(_)));
    assert_eq!(s.profile.as_deref(), Some("initprof"));
    // The workspace: the environment (as Terraform's TF_WORKSPACE) beats .terraform/environment.
    assert_eq!(c.workspace, "fromenv");
    assert_eq!(*source_of(&c, "workspace"), Source::Env("TF_WORKSPACE"));
    let c = resolve(o.clone(), &env[..2]).expect("ok");
    assert_eq!(c.workspace, "staging");
    assert!(matches!(
        source_of(&c, "workspace"),
        Source::TerraformInit(_)
    ));
    assert_eq!(c.state_key(), "ws/staging/block/terraform.tfstate");
    // Shown, not acted on.
    assert!(c.sources.iter().any(|r| r.name == "skip_region_validation"));
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);

    // Flags beat everything.
    let mut f = o.clone();
    f.bucket = Some("flag-bucket".into());
    f.region = Some("sa-east-1".into());
    let c = resolve(f, &env).expect("ok");
    assert_eq!(s3(&c).bucket, "flag-bucket");
    assert_eq!(*source_of(&c, "bucket"), Source::Flag("bucket"));
    assert_eq!(s3(&c).region.as_deref(), Some("sa-east-1"));

    // Without the block, terraform init's record is next.
    std::fs::remove_file(d.path().join("main.tf")).expect("rm");
    let c = resolve(o.clone(), &env).expect("ok");
    assert_eq!(s3(&c).bucket, "init-bucket");
    assert_eq!(c.key, "init/terraform.tfstate");
    assert_eq!(c.workspace_key_prefix, "env:", "default");
    assert!(matches!(
        source_of(&c, "workspace_key_prefix"),
        Source::Default(_)
    ));

    // Without .terraform either: the manifest, then the environment.
    std::fs::remove_dir_all(d.path().join(".terraform")).expect("rm");
    let c = resolve(o.clone(), &env).expect("ok");
    assert_eq!(s3(&c).bucket, "mcf-bucket");
    assert!(
        matches!(source_of(&c, "bucket"), Source::Manifest(_, l) if l == "terraform.openmcf.org/backend.bucket")
    );
    assert_eq!(
        c.key, "mcf/legacy.tfstate",
        "backend.object is a synonym of backend.key"
    );
    assert_eq!(s3(&c).region.as_deref(), Some("ap-south-1"));
    assert_eq!(
        s3(&c).endpoint,
        None,
        "the tofu. endpoint label is not read for Terraform"
    );
    // OpenTofu: tofu.* labels first, terraform.* as fallback.
    let mut t = o.clone();
    t.engine = Some(Engine::Tofu);
    let c = resolve(t, &env).expect("ok");
    assert_eq!(s3(&c).bucket, "tofu-bucket");
    assert_eq!(s3(&c).endpoint.as_deref(), Some("http://127.0.0.1:9100"));
    assert_eq!(c.key, "mcf/legacy.tfstate");
    let c = resolve(o.clone(), &[("TFSYNC_ENGINE", "tofu")]).expect("ok");
    assert_eq!(s3(&c).bucket, "tofu-bucket");

    // No manifest: the environment, then defaults.
    let mut e = in_dir(d.path());
    e.key = Some("k.tfstate".into());
    let c = resolve(e.clone(), &env).expect("ok");
    assert_eq!(s3(&c).bucket, "env-bucket");
    assert_eq!(*source_of(&c, "bucket"), Source::Env("TFSYNC_BUCKET"));
    assert_eq!(*source_of(&c, "region"), Source::Env("AWS_REGION"));
    let c = resolve(e, &[("TFSYNC_BUCKET", "b")]).expect("ok");
    assert!(matches!(source_of(&c, "workspace"), Source::Default(_)));
}

#[test]
fn prompt_fills_only_what_is_missing() {
    let d = tempfile::tempdir().expect("tmp");
    let asked = std::cell::RefCell::new(Vec::new());
    let ask = |name: &str, _hint: &str| -> Option<String> {
        asked.borrow_mut().push(name.to_string());
        Some(format!("typed-{name}"))
    };
    let mut o = in_dir(d.path());
    o.key = Some("k.tfstate".into());
    let c = Config::resolve_with(&o, &|_| None, Needs::State, Some(&ask)).expect("ok");
    assert_eq!(s3(&c).bucket, "typed-bucket");
    assert_eq!(*source_of(&c, "bucket"), Source::Prompt);
    assert_eq!(*asked.borrow(), ["bucket"], "the key had a flag");
    // The environment beats the prompt.
    asked.borrow_mut().clear();
    let c = Config::resolve_with(
        &o,
        &|k| (k == "TFSYNC_BUCKET").then(|| "e".to_string()),
        Needs::State,
        Some(&ask),
    )
    .expect("ok");
    assert_eq!(s3(&c).bucket, "e");
    assert!(asked.borrow().is_empty());
}

#[test]
fn non_interactive_missing_values_name_flag_label_and_variable() {
    let d = tempfile::tempdir().expect("tmp");
    let err = resolve(in_dir(d.path()), &[]).expect_err("missing");
    let msg = err.to_string();
    for needle in [
        "--bucket or TFSYNC_BUCKET",
        "terraform.openmcf.org/backend.bucket",
        "`bucket` in a backend \"s3\" block",
        "--key or TFSYNC_KEY",
        "terraform.openmcf.org/backend.key",
    ] {
        assert!(msg.contains(needle), "{needle:?} missing in: {msg}");
    }
    assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
}

#[test]
fn bad_sources_are_errors() {
    let d = tempfile::tempdir().expect("tmp");
    let f = d.path().join("m.yaml");
    std::fs::write(
        &f,
        "metadata:\n  labels:\n    terraform.openmcf.org/backend.type: consul\n",
    )
    .expect("w");
    let mut o = in_dir(d.path());
    o.manifest = Some(f);
    assert!(
        resolve(o, &[])
            .expect_err("consul")
            .to_string()
            .contains("consul")
    );
    std::fs::write(
        d.path().join("a.tf"),
        "terraform {\n backend \"s3\" { bucket = \"a\" }\n}\n",
    )
    .expect("w");
    std::fs::write(
        d.path().join("b.tf"),
        "terraform {\n backend \"s3\" { bucket = \"b\" }\n}\n",
    )
    .expect("w");
    assert!(
        resolve(in_dir(d.path()), &[])
            .expect_err("two")
            .to_string()
            .contains("two backend")
    );
    std::fs::write(d.path().join("b.tf"), "terraform {\n").expect("w");
    assert!(
        resolve(in_dir(d.path()), &[])
            .expect_err("hcl")
            .to_string()
            .contains("not valid HCL")
    );
    // A block without use_lockfile: loud.
    std::fs::write(d.path().join("b.tf"), "# nothing\n").expect("w");
    let mut o = in_dir(d.path());
    o.key = Some("k".into());
    let c = resolve(o, &[]).expect("ok");
    assert!(
        c.warnings.iter().any(|w| w.contains("use_lockfile")),
        "{:?}",
        c.warnings
    );
}

/// Every setting of the table can be resolved, and then `tfsync config`
/// shows it: the record is the only way out of the table.
#[test]
fn every_setting_of_the_table_is_shown() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("main.tf"),
        r#"terraform {
  backend "s3" {
    use_lockfile = true
    dynamodb_table = "t"
    skip_credentials_validation = true
    skip_region_validation = true
    skip_requesting_account_id = true
    skip_metadata_api_check = true
    skip_s3_checksum = true
    tablestore_endpoint = "https://t.ots.aliyuncs.com"
    tablestore_table = "oss-locks"
  }
}
"#,
    )
    .expect("tf");
    let ca = d.path().join("ca.pem");
    std::fs::write(&ca, TEST_CA).expect("ca");
    let manifest = manifest(d.path());
    let ca_text = ca.display().to_string();
    let env = [
        ("ALICLOUD_ACCESS_KEY", "ak"),
        ("ALICLOUD_SECRET_KEY", "sk"),
        (
            "AWS_SSE_CUSTOMER_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("TFSYNC_RETRY_MIN_WAIT", "1s"),
        ("TFSYNC_RATE_LIMIT", "5"),
        ("TFSYNC_CA_BUNDLE", ca_text.as_str()),
        ("AWS_PROFILE", "p"),
        ("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1"),
    ];
    // An OSS bucket with SSE-C, from flags, the manifest and the environment.
    let mut o = in_dir(d.path());
    o.key = Some("k".into());
    o.manifest = Some(manifest);
    o.engine = Some(Engine::Tofu);
    o.workspace = Some("w".into());
    o.workspace_key_prefix = Some("p".into());
    o.provider = Some(Provider::Oss);
    o.region = Some("cn-hangzhou".into());
    o.path_style = true;
    o.max_attempts = 6;
    o.acl = Some("private".into());
    o.retry_max_wait = Some(std::time::Duration::from_secs(9));
    o.rate_burst = Some(2);
    let a = resolve(o, &env).expect("oss");
    // A directory store with SSE-KMS.
    let mut o = in_dir(d.path());
    o.key = Some("k".into());
    o.dir = Some(d.path().to_path_buf());
    o.sse = Some("aws:kms".into());
    o.kms_key_id = Some("kms".into());
    let b = resolve(o, &[]).expect("dir");
    let shown: Vec<&str> = a.sources.iter().chain(&b.sources).map(|r| r.name).collect();
    for s in table::ALL.iter().copied().chain(table::BACKEND_INFO) {
        assert!(
            shown.contains(&s.name),
            "{} is never shown: {shown:?}",
            s.name
        );
    }
    // Secrets are shown as set, never their value.
    for r in &a.sources {
        assert!(
            !["ak", "sk", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="]
                .contains(&r.value.as_str()),
            "{r:?}"
        );
    }
    assert_eq!(
        a.sources
            .iter()
            .find(|r| r.name == "sse_customer_key")
            .map(|r| r.value.as_str()),
        Some("(set; never shown)")
    );
}

/// The levels of the table, tried in order: remove the winner and the next
/// one wins.
#[test]
fn levels_are_tried_in_order() {
    const T: table::Setting = table::Setting {
        name: "t",
        flag: Some("t"),
        backend: &["t"],
        label: Some("t"),
        env: &["T"],
        empty_ok: false,
        secret: false,
    };
    let layer = |what: &str| {
        Some(sources::Layer {
            file: PathBuf::from(what),
            values: [("t".to_string(), what.to_string())].into(),
        })
    };
    let ask = |_: &str, _: &str| Some("prompt".to_string());
    let env = |k: &str| (k == "T").then(|| "env".to_string());
    let none = |_: &str| None;
    let resolve = |upto: usize| -> Option<(String, Source)> {
        let env: table::Env<'_> = if upto <= 4 { &env } else { &none };
        let mut r = table::Resolver::new(env, Some(&ask));
        r.read_files(
            (upto < 2).then(|| layer("block")).flatten(),
            (upto < 3).then(|| layer("init")).flatten(),
            (upto < 4).then(|| layer("manifest")).flatten(),
        );
        let got = r
            .text(&T)
            .flag((upto < 1).then(|| "flag".to_string()))
            .prompt(upto < 6, "hint")
            .default(Some("default".into()), Source::Default("test"))
            .get_sourced()
            .expect("ok");
        assert_eq!(r.into_resolved().len(), 1, "recorded once");
        got
    };
    let winners: Vec<String> = (0..7).map(|i| resolve(i).expect("found").0).collect();
    assert_eq!(
        winners,
        [
            "flag", "block", "init", "manifest", "env", "prompt", "default"
        ]
    );
    assert_eq!(table::LEVELS.len(), winners.len());
    assert!(matches!(
        resolve(1).map(|f| f.1),
        Some(Source::BackendBlock(_))
    ));
    assert!(matches!(
        resolve(2).map(|f| f.1),
        Some(Source::TerraformInit(_))
    ));
    assert!(matches!(
        resolve(3).map(|f| f.1),
        Some(Source::Manifest(..))
    ));
}

/// `encrypt = false` in the block hides `terraform init`'s `encrypt =
/// true`, not the environment.
#[test]
fn a_backend_attribute_that_turns_a_setting_off() {
    let d = project();
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n backend \"s3\" {\n bucket = \"b\"\n key = \"k\"\n encrypt = false\n use_lockfile = true\n }\n}\n",
    )
    .expect("tf");
    std::fs::write(
        d.path().join(".terraform/terraform.tfstate"),
        r#"{"backend":{"type":"s3","config":{"encrypt":true,"region":"eu-north-1"}}}"#,
    )
    .expect("init");
    let c = resolve(in_dir(d.path()), &[]).expect("ok");
    assert_eq!(c.write.sse, None);
    let c = resolve(in_dir(d.path()), &[("TFSYNC_SSE", "AES256")]).expect("ok");
    assert_eq!(c.write.sse.as_deref(), Some("AES256"));
    assert_eq!(*source_of(&c, "sse"), Source::Env("TFSYNC_SSE"));
    std::fs::remove_file(d.path().join("main.tf")).expect("rm");
    let mut o = in_dir(d.path());
    o.bucket = Some("b".into());
    o.key = Some("k".into());
    let c = resolve(o, &[]).expect("ok");
    assert_eq!(
        c.write.sse.as_deref(),
        Some("AES256"),
        "init's encrypt = true"
    );
    assert!(matches!(source_of(&c, "sse"), Source::TerraformInit(_)));
}

/// `backup verify` needs no bucket and no key, and gets no placeholder.
#[test]
fn needs_nothing() {
    let d = tempfile::tempdir().expect("tmp");
    let o = in_dir(d.path());
    let c = Config::resolve_for(&o, &|_| None, Needs::Nothing).expect("ok");
    assert_eq!(s3(&c).bucket, "");
    assert_eq!(c.key, "");
    assert!(
        c.sources
            .iter()
            .all(|r| r.name != "bucket" && r.name != "key")
    );
    // What is configured is still resolved (a location inherits it).
    let env = |k: &str| match k {
        "TFSYNC_BUCKET" => Some("b".to_string()),
        "AWS_ENDPOINT_URL" => Some("http://127.0.0.1:9".to_string()),
        _ => None,
    };
    let c = Config::resolve_for(&o, &env, Needs::Nothing).expect("ok");
    assert_eq!(s3(&c).bucket, "b");
    assert_eq!(s3(&c).endpoint.as_deref(), Some("http://127.0.0.1:9"));
    // Nothing is asked on a terminal either.
    let ask = |_: &str, _: &str| -> Option<String> { panic!("asked") };
    Config::resolve_with(&o, &|_| None, Needs::Nothing, Some(&ask)).expect("ok");
    // Needs::Bucket still needs the bucket.
    assert!(matches!(
        Config::resolve_for(&o, &|_| None, Needs::Bucket),
        Err(Error::MissingSettings(_))
    ));
}

/// A self-signed P-256 CA certificate (its key was thrown away).
const TEST_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBlDCCATmgAwIBAgIUUdPcUd9F9Dqy8PXynm/12CmkPqswCgYIKoZIzj0EAwIw
HjEcMBoGA1UEAwwTdGZzeW5jIHVuaXQgdGVzdCBDQTAgFw0yNjEyMDEyMDQ3NTFa
GA8yMTI2MTEwNzIwNDc1MVowHjEcMBoGA1UEAwwTdGZzeW5jIHVuaXQgdGVzdCBD
QTBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABIIoGXss/AH+K1/P2tlQl0GsXhBv
jivj8xKNMD9phATTCtZmEHqsvobVrn1xfGThCwy5jje0imkCsKC6+81ybB2jUzBR
MB0GA1UdDgQWBBQuuKMhUoDUCFZdhM5WgJtOIbRZTjAfBgNVHSMEGDAWgBQuuKMh
UoDUCFZdhM5WgJtOIbRZTjAPBgNVHRMBAf8EBTADAQH/MAoGCCqGSM49BAMCA0kA
MEYCIQCcmwJasl9tNI323yLEGrhfGC73E21pBcKaAiJe/0dCbgIhAMMb73cbFevE
Hs/LqXs8tt31Yz3YLES5mP/Dr4hUJ+EU
-----END CERTIFICATE-----
";

/// A CA bundle is read as the TLS client reads it: one it would panic on
/// (bad PEM, or PEM around bytes that are no certificate) is a
/// configuration error naming the file. Old code passed both to the SDK,
/// which panicked (exit 101).
#[test]
fn ca_bundles_are_read_as_the_tls_client_reads_them() {
    let d = tempfile::tempdir().expect("tmp");
    let ca = d.path().join("ca.pem");
    let with = |pem: &str| {
        std::fs::write(&ca, pem).expect("ca");
        let mut o = base();
        o.ca_bundle = Some(ca.clone());
        resolve(o, &[])
    };
    let c = with(TEST_CA).expect("a real certificate");
    assert_eq!(c.transport.ca_bundle.as_deref(), Some(TEST_CA.as_bytes()));
    let two = format!("{TEST_CA}{TEST_CA}");
    with(&two).expect("two certificates");
    for (pem, why) in [
        ("-----BEGIN CERTIFICATE-----\n", "not valid PEM"),
        (
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "cannot be read",
        ),
        ("no certificate here\n", "holds no PEM certificate"),
        (
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "holds no PEM certificate",
        ),
    ] {
        let e = with(pem).expect_err(pem).to_string();
        assert!(e.contains(why) && e.contains("ca.pem"), "{pem:?}: {e}");
    }
    let e = with(&format!(
        "{TEST_CA}-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    ))
    .expect_err("one bad of two")
    .to_string();
    assert!(e.contains("number 2"), "{e}");
}

/// Terraform's encryption rules (write.rs): (encrypt, kms_key_id, customer
/// key in the block, AWS_SSE_CUSTOMER_KEY) -> what is applied. A key
/// without `encrypt` is not applied (and warned about); `encrypt` with a
/// customer key is SSE-C; a KMS key with a customer key is refused.
#[test]
fn encryption_follows_terraforms_rules() {
    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
    const OTHER: &str = "OTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTBmZWRjYmE=";
    // (encrypt, kms_key_id, sse_customer_key, AWS_SSE_CUSTOMER_KEY) ->
    // (sse, kms key, customer key, warnings about unapplied keys)
    type Row = (
        Option<bool>,
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
    );
    type Want = (
        Option<&'static str>,
        Option<&'static str>,
        Option<&'static str>,
        usize,
    );
    let rows: &[(Row, Want)] = &[
        ((None, None, None, None), (None, None, None, 0)),
        (
            (Some(true), None, None, None),
            (Some("AES256"), None, None, 0),
        ),
        (
            (Some(false), Some("alias/k"), None, None),
            (None, None, None, 1),
        ),
        (
            (Some(true), Some("alias/k"), None, None),
            (Some("aws:kms"), Some("alias/k"), None, 0),
        ),
        ((None, Some("alias/k"), None, None), (None, None, None, 1)),
        (
            (Some(true), None, Some(KEY), None),
            (None, None, Some(KEY), 0),
        ),
        (
            (Some(true), None, None, Some(KEY)),
            (None, None, Some(KEY), 0),
        ),
        // The block's key wins over the environment's, as in Terraform.
        (
            (Some(true), None, Some(KEY), Some(OTHER)),
            (None, None, Some(KEY), 0),
        ),
        ((None, None, Some(KEY), None), (None, None, None, 1)),
        ((None, None, None, Some(KEY)), (None, None, None, 1)),
        ((Some(false), None, None, Some(KEY)), (None, None, None, 1)),
    ];
    for (row @ (encrypt, kms, block_key, env_key), want) in rows {
        let d = tempfile::tempdir().expect("tmp");
        let mut tf = String::from(
            "terraform {\n backend \"s3\" {\n bucket = \"b\"\n key = \"k\"\n use_lockfile = true\n",
        );
        if let Some(e) = encrypt {
            tf.push_str(&format!(" encrypt = {e}\n"));
        }
        if let Some(k) = kms {
            tf.push_str(&format!(" kms_key_id = \"{k}\"\n"));
        }
        if let Some(k) = block_key {
            tf.push_str(&format!(" sse_customer_key = \"{k}\"\n"));
        }
        tf.push_str(" }\n}\n");
        std::fs::write(d.path().join("main.tf"), tf).expect("tf");
        let env: Vec<(&str, &str)> = env_key
            .iter()
            .map(|k| ("AWS_SSE_CUSTOMER_KEY", *k))
            .collect();
        let c = resolve(in_dir(d.path()), &env).unwrap_or_else(|e| panic!("{row:?}: {e}"));
        let got = (
            c.write.sse.as_deref(),
            c.write.kms_key_id.as_deref(),
            c.write.sse_customer_key.as_deref(),
            c.warnings
                .iter()
                .filter(|w| w.contains("is not applied"))
                .count(),
        );
        assert_eq!(got, *want, "{row:?}: {:?}", c.warnings);
        // A key in the block is warned about as a key kept in a file.
        assert_eq!(
            c.warnings
                .iter()
                .any(|w| w.contains("sets sse_customer_key")),
            block_key.is_some(),
            "{row:?}: {:?}",
            c.warnings
        );
    }

    // tfsync's own switch: --sse (or TFSYNC_SSE) is `encrypt`.
    let mut o = base();
    o.sse = Some("AES256".into());
    let c = resolve(o.clone(), &[("AWS_SSE_CUSTOMER_KEY", KEY)]).expect("ssec");
    assert_eq!(
        (c.write.sse, c.write.sse_customer_key.as_deref()),
        (None, Some(KEY))
    );
    o.sse = Some("aws:kms".into());
    assert!(matches!(
        resolve(o.clone(), &[("AWS_SSE_CUSTOMER_KEY", KEY)]),
        Err(Error::Config(_))
    ));
    o.kms_key_id = Some("alias/k".into());
    let c = resolve(o.clone(), &[]).expect("kms");
    assert_eq!(
        (c.write.sse.as_deref(), c.write.kms_key_id.as_deref()),
        (Some("aws:kms"), Some("alias/k"))
    );
    o.sse = Some("AES256".into());
    assert!(matches!(resolve(o, &[]), Err(Error::Config(_))));
    let mut o = base();
    o.kms_key_id = Some("alias/k".into());
    let c = resolve(o.clone(), &[("TFSYNC_SSE", "aws:kms")]).expect("kms");
    assert_eq!(c.write.kms_key_id.as_deref(), Some("alias/k"));

    // Terraform refuses a KMS key with a customer key, encrypt or not.
    for env in [
        vec![("AWS_SSE_CUSTOMER_KEY", KEY)],
        vec![("AWS_SSE_CUSTOMER_KEY", KEY), ("TFSYNC_SSE", "AES256")],
    ] {
        let err = resolve(o.clone(), &env).expect_err("kms + customer key");
        assert!(matches!(err, Error::Config(_)), "{err}");
        assert!(!err.to_string().contains(KEY), "{err}");
    }
    // A bad customer key is an error wherever it comes from, never shown.
    let err = resolve(base(), &[("AWS_SSE_CUSTOMER_KEY", "c2hvcnQ=")]).expect_err("short");
    assert!(!err.to_string().contains("c2hvcnQ="), "{err}");
}

/// The manifest's `openmcf.org/provisioner` picks whose backend labels are
/// read; tofu falls back to the terraform.* labels; `--engine` overrides.
#[test]
fn provisioner_label_picks_the_label_prefix() {
    let d = tempfile::tempdir().expect("tmp");
    let write = |name: &str, labels: &str| -> PathBuf {
        let f = d.path().join(name);
        std::fs::write(
            &f,
            format!("apiVersion: aws.openmcf.org/v1\nkind: AwsVpc\nmetadata:\n  name: x\n  labels:\n{labels}spec: {{}}\n"),
        )
        .expect("manifest");
        f
    };
    let with = |f: &PathBuf| {
        let mut o = in_dir(d.path());
        o.manifest = Some(f.clone());
        o
    };
    let row = |c: &Config, name: &str| -> (String, String) {
        let r = c
            .sources
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not shown: {:?}", c.sources));
        (r.value.clone(), r.source.to_string())
    };

    // The bug: a tofu manifest with only tofu labels was ignored.
    let tofu_only = write(
        "tofu.yaml",
        "    openmcf.org/provisioner: tofu\n    tofu.openmcf.org/backend.type: s3\n    tofu.openmcf.org/backend.bucket: tofu-bucket\n    tofu.openmcf.org/backend.key: tofu/terraform.tfstate\n    tofu.openmcf.org/backend.endpoint: http://127.0.0.1:9100\n",
    );
    let c = resolve(with(&tofu_only), &[]).expect("the tofu labels are read");
    assert_eq!(s3(&c).bucket, "tofu-bucket");
    assert_eq!(c.key, "tofu/terraform.tfstate");
    assert_eq!(s3(&c).endpoint.as_deref(), Some("http://127.0.0.1:9100"));
    assert!(
        matches!(source_of(&c, "bucket"), Source::Manifest(_, l) if l == "tofu.openmcf.org/backend.bucket")
    );
    assert!(
        matches!(source_of(&c, "engine"), Source::Manifest(_, l) if l == "openmcf.org/provisioner")
    );
    let (v, why) = row(&c, "manifest_labels");
    assert_eq!(
        v,
        "tofu.openmcf.org/backend.*, then terraform.openmcf.org/backend.*"
    );
    assert!(why.contains("label openmcf.org/provisioner"), "{why}");
    // --engine overrides the label: the terraform.* labels, which it has not.
    let mut o = with(&tofu_only);
    o.engine = Some(Engine::Terraform);
    let err = resolve(o, &[]).expect_err("no terraform.* labels");
    assert!(matches!(err, Error::MissingSettings(_)), "{err}");
    assert!(
        err.to_string()
            .contains("label terraform.openmcf.org/backend.bucket in"),
        "{err}"
    );
    // A tofu manifest without bucket or key: the message names the tofu labels.
    let empty = write("empty.yaml", "    openmcf.org/provisioner: tofu\n");
    let msg = resolve(with(&empty), &[]).expect_err("missing").to_string();
    assert!(
        msg.contains("tofu.openmcf.org/backend.bucket (or terraform.openmcf.org/backend.bucket)")
            && msg.contains("tofu.openmcf.org/backend.key (or"),
        "{msg}"
    );

    // A terraform manifest with both prefixes: the terraform.* labels (any case).
    let both = write(
        "tf.yaml",
        "    openmcf.org/provisioner: Terraform\n    terraform.openmcf.org/backend.bucket: tf-bucket\n    terraform.openmcf.org/backend.key: tf/terraform.tfstate\n    tofu.openmcf.org/backend.bucket: tofu-bucket\n    tofu.openmcf.org/backend.key: tofu/terraform.tfstate\n",
    );
    let c = resolve(with(&both), &[]).expect("ok");
    assert_eq!(
        (s3(&c).bucket.as_str(), c.key.as_str()),
        ("tf-bucket", "tf/terraform.tfstate")
    );
    assert_eq!(
        row(&c, "manifest_labels").0,
        "terraform.openmcf.org/backend.*"
    );
    // The label beats TFSYNC_ENGINE (manifest before environment, as every setting)...
    let c = resolve(with(&both), &[("TFSYNC_ENGINE", "tofu")]).expect("ok");
    assert_eq!(s3(&c).bucket, "tf-bucket");
    // ...and --engine beats the label.
    let mut o = with(&both);
    o.engine = Some(Engine::Tofu);
    let c = resolve(o, &[]).expect("ok");
    assert_eq!(s3(&c).bucket, "tofu-bucket");
    assert_eq!(*source_of(&c, "engine"), Source::Flag("engine"));
    assert_eq!(row(&c, "manifest_labels").1, "flag --engine");

    // tofu without tofu labels: the terraform.* ones, as OpenMCF documents.
    let fallback = write(
        "fallback.yaml",
        "    openmcf.org/provisioner: tofu\n    terraform.openmcf.org/backend.bucket: tf-bucket\n    terraform.openmcf.org/backend.key: tf/terraform.tfstate\n    tofu.openmcf.org/backend.region: eu-west-3\n",
    );
    let c = resolve(with(&fallback), &[]).expect("ok");
    assert_eq!(s3(&c).bucket, "tf-bucket");
    assert!(
        matches!(source_of(&c, "bucket"), Source::Manifest(_, l) if l == "terraform.openmcf.org/backend.bucket")
    );
    assert_eq!(s3(&c).region.as_deref(), Some("eu-west-3"));

    // No label: Terraform's, unless TFSYNC_ENGINE says otherwise.
    let none = write(
        "none.yaml",
        "    terraform.openmcf.org/backend.bucket: tf-bucket\n    terraform.openmcf.org/backend.key: tf/terraform.tfstate\n    tofu.openmcf.org/backend.bucket: tofu-bucket\n",
    );
    let c = resolve(with(&none), &[]).expect("ok");
    assert_eq!(s3(&c).bucket, "tf-bucket");
    assert!(matches!(source_of(&c, "engine"), Source::Default(_)));
    let c = resolve(with(&none), &[("TFSYNC_ENGINE", "tofu")]).expect("ok");
    assert_eq!(s3(&c).bucket, "tofu-bucket");

    // A pulumi manifest: an error that says what to do, unless --engine.
    let pulumi = write(
        "pulumi.yaml",
        "    openmcf.org/provisioner: pulumi\n    terraform.openmcf.org/backend.bucket: tf-bucket\n    terraform.openmcf.org/backend.key: tf/terraform.tfstate\n",
    );
    let err = resolve(with(&pulumi), &[]).expect_err("pulumi");
    let msg = err.to_string();
    assert!(
        msg.contains("pulumi") && msg.contains("pulumi.yaml") && msg.contains("--engine"),
        "{msg}"
    );
    assert_eq!(crate::exit::code(&err), crate::exit::USAGE);
    let mut o = with(&pulumi);
    o.engine = Some(Engine::Terraform);
    assert_eq!(s3(&resolve(o, &[]).expect("ok")).bucket, "tf-bucket");
}

/// A `backend "oss"` block selects the oss layout (default workspace at
/// `<prefix>/<key>`), with Terraform's defaults (prefix `env:`, key
/// `terraform.tfstate`), the oss preset, and its TableStore settings shown.
#[test]
fn an_oss_backend_block() {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("main.tf"),
        r#"terraform {
  backend "oss" {
    bucket              = "ob"
    prefix              = "/states/"
    region              = "cn-hangzhou"
    endpoint            = "oss-cn-hangzhou.aliyuncs.com"
    tablestore_endpoint = "https://tf.cn-hangzhou.ots.aliyuncs.com"
    tablestore_table    = "locks"
  }
}
"#,
    )
    .expect("tf");
    let c = resolve(in_dir(d.path()), &[]).expect("oss");
    assert_eq!(c.layout, keys::Layout::Oss);
    assert_eq!(c.key, "terraform.tfstate");
    assert_eq!(c.workspace_key_prefix, "states");
    assert_eq!(c.state_key(), "states/terraform.tfstate");
    assert_eq!(c.state_key_of("dev"), "states/dev/terraform.tfstate");
    let s = s3(&c);
    assert_eq!(s.bucket, "ob");
    assert_eq!(
        s.endpoint.as_deref(),
        Some("https://oss-cn-hangzhou.aliyuncs.com")
    );
    assert!(!s.path_style, "OSS is virtual-hosted");
    assert_eq!(
        source_of(&c, "provider").to_string(),
        "default (backend \"oss\")"
    );
    for name in ["tablestore_endpoint", "tablestore_table"] {
        assert!(c.sources.iter().any(|r| r.name == name), "{name}");
    }
    assert!(
        c.warnings.iter().any(|w| w.contains("Alibaba TableStore")),
        "{:?}",
        c.warnings
    );
    assert!(
        !c.warnings.iter().any(|w| w.contains("use_lockfile")),
        "{:?}",
        c.warnings
    );
    // No prefix: `env:`; a key and credentials from the environment.
    std::fs::write(
        d.path().join("main.tf"),
        "terraform {\n backend \"oss\" {\n bucket = \"ob\"\n key = \"net/t.tfstate\"\n region = \"cn-hangzhou\"\n }\n}\n",
    )
    .expect("tf");
    let env = [("ALICLOUD_ACCESS_KEY", "ak"), ("ALICLOUD_SECRET_KEY", "sk")];
    let c = resolve(in_dir(d.path()), &env).expect("oss");
    assert_eq!(c.state_key(), "env:/net/t.tfstate");
    assert!(s3(&c).credentials.is_some());
    // What `terraform init` recorded for an oss backend counts too.
    std::fs::remove_file(d.path().join("main.tf")).expect("rm");
    std::fs::create_dir(d.path().join(".terraform")).expect("mkdir");
    std::fs::write(
        d.path().join(".terraform/terraform.tfstate"),
        r#"{"backend":{"type":"oss","config":{"bucket":"ib","prefix":"p","region":"cn-beijing"}}}"#,
    )
    .expect("init");
    let c = resolve(in_dir(d.path()), &[]).expect("init oss");
    assert_eq!(
        (c.layout, c.state_key()),
        (keys::Layout::Oss, "p/terraform.tfstate".to_string())
    );
}

/// `--provider oss` on an s3 backend keeps the s3 layout, and Terraform's
/// workspace prefix `env:` (it was `workspaces`).
#[test]
fn provider_oss_keeps_the_s3_layout_and_env_prefix() {
    let mut o = base();
    o.provider = Some(Provider::Oss);
    o.region = Some("cn-hangzhou".into());
    o.workspace = Some("dev".into());
    let c = resolve(o.clone(), &[]).expect("oss preset");
    assert_eq!(c.layout, keys::Layout::S3);
    assert_eq!(c.workspace_key_prefix, "env:");
    assert_eq!(c.state_key(), "env:/dev/k.tfstate");
    o.workspace = None;
    assert_eq!(
        resolve(o, &[]).expect("oss preset").state_key(),
        "k.tfstate"
    );
}

/// The azurerm backend's endpoint: Azure's in the cloud of `environment` /
/// `ARM_ENVIRONMENT` (as Terraform reads them), `TFSYNC_AZURE_ENDPOINT`
/// first; an unknown cloud is an error; the key is never in the Debug form.
#[test]
fn azurerm_endpoint_and_environment() {
    let d = tempfile::tempdir().expect("tmp");
    let block = |extra: &str| {
        std::fs::write(
            d.path().join("main.tf"),
            format!(
                "terraform {{\n  backend \"azurerm\" {{\n    storage_account_name = \"acct1\"\n    container_name = \"tfstate\"\n    key = \"k.tfstate\"\n    {extra}\n  }}\n}}\n"
            ),
        )
        .expect("tf");
    };
    let key = [("ARM_ACCESS_KEY", "c2VjcmV0LWtleQ==")];
    let azure = |c: &Config| match &c.target {
        Target::Azure(a) => a.clone(),
        other => panic!("expected azurerm: {other:?}"),
    };
    block("");
    let c = resolve(in_dir(d.path()), &key).expect("ok");
    assert_eq!(azure(&c).endpoint, "https://acct1.blob.core.windows.net");
    assert!(!format!("{:?}", c.target).contains("c2VjcmV0"));
    block("environment = \"china\"");
    let c = resolve(in_dir(d.path()), &key).expect("ok");
    assert_eq!(
        azure(&c).endpoint,
        "https://acct1.blob.core.chinacloudapi.cn"
    );
    block("");
    let env = [key[0], ("ARM_ENVIRONMENT", "USGovernment")];
    let c = resolve(in_dir(d.path()), &env).expect("ok");
    assert_eq!(
        azure(&c).endpoint,
        "https://acct1.blob.core.usgovcloudapi.net"
    );
    let env = [key[0], ("ARM_ENVIRONMENT", "mars")];
    let err = resolve(in_dir(d.path()), &env).expect_err("unknown cloud");
    assert!(err.to_string().contains("mars"), "{err}");
    let env = [
        key[0],
        ("ARM_ENVIRONMENT", "mars"),
        ("TFSYNC_AZURE_ENDPOINT", "http://127.0.0.1:9/acct1"),
    ];
    assert!(resolve(in_dir(d.path()), &env).is_ok(), "an endpoint given");
    let env = [
        key[0],
        ("TFSYNC_AZURE_ENDPOINT", "http://127.0.0.1:9/acct1"),
    ];
    let c = resolve(in_dir(d.path()), &env).expect("ok");
    assert_eq!(azure(&c).endpoint, "http://127.0.0.1:9/acct1");
    // A SAS token when there is no key (Terraform's order), never shown.
    let env = [("ARM_SAS_TOKEN", "sv=2021-08-06&sig=abc")];
    let c = resolve(in_dir(d.path()), &env).expect("ok");
    assert!(matches!(azure(&c).credential, AzureCredential::SasToken(_)));
    let both = [key[0], env[0]];
    let c = resolve(in_dir(d.path()), &both).expect("ok");
    assert!(matches!(
        azure(&c).credential,
        AzureCredential::AccessKey(_)
    ));
}

fn gcs_dir(block: &str) -> tempfile::TempDir {
    let d = tempfile::tempdir().expect("tmp");
    std::fs::write(
        d.path().join("main.tf"),
        format!("terraform {{\n  backend \"gcs\" {{\n{block}\n  }}\n}}\n"),
    )
    .expect("tf");
    d
}

fn gcs(c: &Config) -> &crate::store::gcs::GcsOptions {
    match &c.target {
        Target::Gcs(g) => g,
        other => panic!("expected gcs, got {other:?}"),
    }
}

#[test]
fn a_gcs_block_is_terraforms_layout_and_credential_chain() {
    use crate::store::gcs::GcsAuth;
    let d = gcs_dir("    bucket = \"tf\"\n    prefix = \"/team/net/\"");
    let c = resolve(in_dir(d.path()), &[]).expect("gcs");
    assert_eq!(gcs(&c).bucket, "tf");
    assert_eq!(gcs(&c).endpoint, "https://storage.googleapis.com");
    assert_eq!(gcs(&c).auth, GcsAuth::Default, "ADC when nothing else");
    assert_eq!(c.state_key(), "team/net/default.tfstate");
    assert_eq!(c.state_key_of("dev"), "team/net/dev.tfstate");
    assert_eq!(c.workspace_list_prefix(), "team/net/");
    assert_eq!(
        c.workspace_names([
            "team/net/default.tfstate",
            "team/net/prod.tfstate",
            "team/net/dev.tfstate",
            "team/net/dev.tflock",
            "team/net/sub/x.tfstate",
            "team/net/bad name.tfstate",
        ]),
        ["default", "dev", "prod"]
    );
    // access_token first, then credentials / GOOGLE_BACKEND_CREDENTIALS /
    // GOOGLE_CREDENTIALS; an http endpoint without either: no credentials.
    let c = resolve(
        in_dir(d.path()),
        &[
            ("GOOGLE_OAUTH_ACCESS_TOKEN", "ya29.tok"),
            ("GOOGLE_CREDENTIALS", "{}"),
        ],
    )
    .expect("token");
    assert_eq!(gcs(&c).auth, GcsAuth::Token(String::new()));
    // Secrets are shown as set, never their value.
    let shown = format!("{:?} {:?}", c.sources, gcs(&c));
    assert!(!shown.contains("ya29"), "{shown}");
    assert!(shown.contains("access_token"), "{shown}");
    let c = resolve(
        in_dir(d.path()),
        &[("GOOGLE_CREDENTIALS", "{\"type\":\"x\"}")],
    )
    .expect("creds");
    assert_eq!(gcs(&c).auth, GcsAuth::ServiceAccountJson(String::new()));
    let c = resolve(
        in_dir(d.path()),
        &[("TFSYNC_GCS_ENDPOINT", "http://127.0.0.1:9")],
    )
    .expect("emulator");
    assert_eq!(gcs(&c).auth, GcsAuth::Anonymous);
    assert_eq!(gcs(&c).endpoint, "http://127.0.0.1:9");
    // An empty prefix: `default.tfstate` at the bucket's root.
    let d = gcs_dir("    bucket = \"tf\"");
    let c = resolve(in_dir(d.path()), &[]).expect("gcs");
    assert_eq!(c.state_key_of("w"), "w.tfstate");
    assert_eq!(c.workspace_list_prefix(), "");
    // Both keys: refused, as Terraform does.
    let d = gcs_dir(
        "    bucket = \"tf\"\n    encryption_key = \"AAAA\"\n    kms_encryption_key = \"projects/p/locations/l/keyRings/r/cryptoKeys/k\"",
    );
    let e = resolve(in_dir(d.path()), &[]).expect_err("both");
    assert!(e.to_string().contains("encryption_key"), "{e}");
}

/// `tfsync config` names the block a setting came from by its backend type
/// (old code: `backend "s3" block` for gcs and azurerm blocks too).
#[test]
fn a_setting_from_a_gcs_block_names_that_block() {
    let d = gcs_dir("    bucket = \"tf\"\n    prefix = \"net\"");
    let c = resolve(in_dir(d.path()), &[]).expect("gcs");
    let s = source_of(&c, "bucket").to_string();
    assert!(s.starts_with("backend \"gcs\" block in "), "{s}");
}
