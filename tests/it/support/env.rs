//! A fresh bucket on one server, a temporary directory, and the tfsync binary
//! pointed at [`KEY`] in that bucket: the setting of the end-to-end tests.

use super::{Run, Server, run};
use serde_json::Value;
use tfsync::store::s3::S3Store;
use tfsync::store::{ObjectStore, StoreError};

pub const KEY: &str = "team/app/terraform.tfstate";

pub struct Env {
    pub server: Server,
    pub store: S3Store,
    pub dir: tempfile::TempDir,
}

impl Env {
    pub async fn new(server: Server, tag: &str) -> Env {
        let store = server.new_bucket(tag).await;
        Env {
            server,
            store,
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    pub fn bucket(&self) -> &str {
        self.store.bucket()
    }
    pub fn tfsync(&self, args: &[&str]) -> Run {
        run(self.server.tfsync(self.bucket(), KEY).args(args))
    }
    /// `tfsync --output json ARGS`, which must succeed; its parsed output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let r = self.tfsync(&a);
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{args:?} json: {e}: {r:?}"))
    }
    /// Write `bytes` to `name` in the temporary directory; its path.
    pub fn file(&self, name: &str, bytes: &[u8]) -> String {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).expect("write");
        p.to_string_lossy().into_owned()
    }
    /// `tfsync -w WORKSPACE push`, which must succeed.
    pub async fn push(&self, workspace: &str, bytes: &[u8]) {
        let p = self.dir.path().join(format!("{workspace}.tfstate"));
        std::fs::write(&p, bytes).expect("write");
        let r = self.tfsync(&["-w", workspace, "push", &p.to_string_lossy()]);
        assert_eq!(r.code, 0, "{r:?}");
    }
    pub async fn remote(&self, key: &str) -> Option<Vec<u8>> {
        match self.store.get(key).await {
            Ok(g) => Some(g.bytes),
            Err(StoreError::NotFound { .. }) => None,
            Err(e) => panic!("get {key}: {e}"),
        }
    }
    pub async fn exists(&self, key: &str) -> bool {
        match self.store.head(key).await {
            Ok(_) => true,
            Err(StoreError::NotFound { .. }) => false,
            Err(e) => panic!("head {key}: {e}"),
        }
    }
}
