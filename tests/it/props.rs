//! Property tests for the parsers: no panic on any input, round trips kept.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use tfsync::cli::{GlobalOpts, parse_duration};
use tfsync::config::Config;
use tfsync::tfstate::keys;
use tfsync::tfstate::lock::{LockInfo, go_rfc3339_nano};
use tfsync::tfstate::state::{self, StateInfo};

fn lock_strategy() -> impl Strategy<Value = LockInfo> {
    (
        "[a-f0-9-]{1,40}",
        any::<String>(),
        any::<String>(),
        any::<String>(),
        any::<String>(),
        0i64..4_102_444_800,
        0u32..1_000_000_000,
        any::<String>(),
    )
        .prop_map(
            |(id, operation, info, who, version, secs, nanos, path)| LockInfo {
                id,
                operation,
                info,
                who,
                version,
                created: DateTime::<Utc>::from_timestamp(secs, nanos).expect("in range"),
                path,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn state_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = state::parse(&bytes);
        let _ = state::check_push(&bytes, Some(&bytes));
    }

    #[test]
    fn state_parser_on_json_like_input(s in r#"\{("(version|serial|lineage|resources|outputs|encrypted_data)":(-?[0-9]{1,25}(\.[0-9])?|"[a-z]{0,5}"|null|\[\]|\{\}|true),?){0,6}\}"#) {
        match state::parse(s.as_bytes()) {
            Ok(StateInfo::Plain(sum)) => prop_assert!(sum.version == 3 || sum.version == 4),
            Ok(StateInfo::Encrypted { .. }) => prop_assert!(s.contains("encrypted_data")),
            Err(msg) => prop_assert!(!msg.is_empty()),
        }
    }

    #[test]
    fn serial_and_lineage_are_read_exactly(serial in any::<u64>(), lineage in "[ -~]{0,40}") {
        let doc = serde_json::json!({"version": 4, "serial": serial, "lineage": lineage, "resources": [], "outputs": {}});
        let bytes = serde_json::to_vec(&doc).expect("json");
        match state::parse(&bytes) {
            Ok(StateInfo::Plain(s)) => { prop_assert_eq!(s.serial, serial); prop_assert_eq!(s.lineage, lineage); }
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn lock_parser_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = LockInfo::from_json(&bytes);
    }

    #[test]
    fn lock_round_trips(info in lock_strategy()) {
        let json = info.to_json();
        let back = LockInfo::from_json(&json).expect("own lock parses");
        prop_assert_eq!(&back, &info);
        prop_assert_eq!(back.to_json(), json, "byte-identical when written again");
    }

    #[test]
    fn go_time_round_trips(secs in 0i64..4_102_444_800, nanos in 0u32..1_000_000_000) {
        let t = DateTime::<Utc>::from_timestamp(secs, nanos).expect("in range");
        let s = go_rfc3339_nano(&t);
        prop_assert!(s.ends_with('Z'));
        prop_assert!(!s.contains(".") || !s.trim_end_matches('Z').ends_with('0'), "trailing zeros trimmed: {}", s);
        let back = DateTime::parse_from_rfc3339(&s).expect("rfc3339").with_timezone(&Utc);
        prop_assert_eq!(back, t);
    }

    #[test]
    fn durations_never_panic(s in any::<String>()) {
        let _ = parse_duration(&s);
    }

    #[test]
    fn duration_seconds_round_trip(n in 0u64..10_000_000) {
        prop_assert_eq!(parse_duration(&format!("{n}s")), Ok(std::time::Duration::from_secs(n)));
        prop_assert_eq!(parse_duration(&n.to_string()), Ok(std::time::Duration::from_secs(n)));
    }

    #[test]
    fn config_never_panics(
        bucket in proptest::option::of(any::<String>()),
        key in proptest::option::of(any::<String>()),
        workspace in proptest::option::of(any::<String>()),
        prefix in proptest::option::of(any::<String>()),
        endpoint in proptest::option::of(any::<String>()),
        env_endpoint in proptest::option::of(any::<String>()),
    ) {
        let opts = GlobalOpts { bucket, key, workspace, workspace_key_prefix: prefix, endpoint, max_attempts: 3, ..Default::default() };
        let env = move |k: &str| if k == "AWS_ENDPOINT_URL_S3" { env_endpoint.clone() } else { None };
        if let Ok(c) = Config::resolve(&opts, &env) {
            // Whatever was accepted names a state key Terraform would accept.
            let k = c.state_key();
            prop_assert!(!k.is_empty() && !k.starts_with('/') && !k.ends_with(keys::LOCK_SUFFIX));
            prop_assert!(!k.split('/').any(|seg| seg == ".." || seg == "."));
        }
    }

    #[test]
    fn workspace_keys_round_trip(ws in "[a-zA-Z0-9_.~-]{1,20}", key in "[a-z0-9]{1,8}(/[a-z0-9]{1,8}){0,3}\\.tfstate") {
        prop_assume!(ws != "default" && ws != "." && ws != "..");
        let k = keys::state_key(&key, &ws, "env:");
        prop_assert_eq!(k.strip_prefix(&format!("env:/{ws}/")), Some(key.as_str()));
        prop_assert_eq!(keys::lock_key(&k), format!("{k}.tflock"));
    }
}
