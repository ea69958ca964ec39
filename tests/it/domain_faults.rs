//! The guarded state write of `migrate` and `restore --version-id` when the
//! response to its own PUT is lost (`support::proxy` forwards the PUT, the
//! server applies it, the client never hears; the SDK's retry then fails its
//! condition on our own object). Each must recognise its own write by the
//! MD5 of the bytes it sent, as `push` does (`tests/faults.rs`).

use crate::support;

use support::proxy::{Fault, Proxy, Rule};
use support::{Server, run, state};
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, PutMode, StoreError};
use tfsync::tfstate::state::{StateInfo, parse};

const KEY: &str = "net/terraform.tfstate";
const LOCK: &str = "net/terraform.tfstate.tflock";

async fn proxy_for(server: &Server) -> Proxy {
    Proxy::start(server.endpoint().trim_start_matches("http://").to_string()).await
}

async fn get(store: &S3Store, key: &str) -> Option<Vec<u8>> {
    match store.get(key).await {
        Ok(g) => Some(g.bytes),
        Err(StoreError::NotFound { .. }) => None,
        Err(e) => panic!("get {key}: {e}"),
    }
}

fn puts_of(proxy: &Proxy, bucket: &str, key: &str) -> usize {
    let want = format!("/{bucket}/{key}");
    proxy
        .seen()
        .iter()
        .filter(|s| s.method == "PUT" && s.path.split('?').next() == Some(want.as_str()))
        .count()
}

fn lost_put(proxy: &Proxy, bucket: &str, key: &str) {
    proxy.clear();
    proxy.add(Rule {
        method: "PUT",
        path_ends: format!("/{bucket}/{key}"),
        times: 1,
        fault: Fault::DropResponse,
    });
}

/// `migrate`: the destination PUT lands but its response is lost, once on a
/// create-only write (no destination state yet) and once on an `If-Match`
/// overwrite (a newer source migrated again). Both are our own write.
async fn migrate_lost_destination_response(server: Server) {
    let src = server.new_bucket("dfm-src").await;
    let dst = server.new_bucket("dfm-dst").await;
    let proxy = proxy_for(&server).await;
    let migrate = || {
        let mut cmd = server.tfsync(src.bucket(), KEY);
        cmd.env("AWS_ENDPOINT_URL_S3", proxy.endpoint()).args([
            "migrate",
            "--to",
            &format!("s3://{}", dst.bucket()),
        ]);
        run(&mut cmd)
    };

    for (round, serial) in [(1, 5), (2, 6)] {
        let bytes = state("lin-m", serial, 2);
        src.put(KEY, bytes.clone(), PutMode::Overwrite)
            .await
            .expect("seed source");
        lost_put(&proxy, dst.bucket(), KEY);
        let r = migrate();
        assert_eq!(
            r.code, 0,
            "round {round}: our own destination write must be recognised: {r:?}"
        );
        assert!(
            puts_of(&proxy, dst.bucket(), KEY) >= 2,
            "round {round}: the scenario happened (a PUT applied, its retry refused): {:?}",
            proxy.seen()
        );
        assert_eq!(get(&dst, KEY).await, Some(bytes.clone()), "round {round}");
        assert_eq!(get(&src, KEY).await, Some(bytes), "source untouched");
        assert_eq!(get(&src, LOCK).await, None, "source lock released");
        assert_eq!(get(&dst, LOCK).await, None, "destination lock released");
    }
}

/// `restore --version-id`: the `If-Match` PUT of the restored version lands
/// but its response is lost.
async fn restore_version_lost_response(server: Server) {
    let store = server.new_versioned_bucket("dfr").await;
    for serial in 1..=2 {
        store
            .put(
                KEY,
                state("lin-r", serial, serial as usize),
                PutMode::Overwrite,
            )
            .await
            .expect("seed");
    }
    let versions: Vec<_> = store
        .list_versions(KEY)
        .await
        .expect("versions")
        .into_iter()
        .filter(|v| v.key == KEY && !v.delete_marker)
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let oldest = versions
        .iter()
        .find(|v| !v.is_latest)
        .expect("an older version")
        .version_id
        .clone();

    let proxy = proxy_for(&server).await;
    lost_put(&proxy, store.bucket(), KEY);
    let r = run(server
        .tfsync(store.bucket(), KEY)
        .env("AWS_ENDPOINT_URL_S3", proxy.endpoint())
        .args(["restore", "--version-id", &oldest]));
    assert_eq!(r.code, 0, "our own write must be recognised: {r:?}");
    assert!(
        puts_of(&proxy, store.bucket(), KEY) >= 2,
        "the scenario happened (a PUT applied, its retry refused): {:?}",
        proxy.seen()
    );
    let now = get(&store, KEY).await.expect("state");
    match parse(&now).expect("state") {
        StateInfo::Plain(s) => {
            assert_eq!((s.serial, s.lineage.as_str()), (3, "lin-r"));
            assert_eq!(s.resources, 1, "the old version's content");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(get(&store, LOCK).await, None, "lock released");
}

on_each_server!(migrate_lost_destination_response);
on_each_server!([moto, seaweedfs] restore_version_lost_response);
