//! The domain: where Terraform keeps states and locks, what a lock says, what
//! a state says, the rules for replacing one, the lock lifecycle and the one
//! guarded state write. Nothing here prints.

pub mod azure_lock;
pub mod current;
pub mod dynamo;
pub mod gcs_lock;
pub mod guard;
pub mod keys;
pub mod local_lock;
pub mod local_probe;
pub mod lock;
pub mod migrate;
pub mod outputs;
pub mod read;
pub mod scan;
pub mod state;
pub mod stream;
pub mod write;
