//! tfsync: Terraform / OpenTofu remote state on S3-compatible storage.
//!
//! Layers, each knowing only the ones below it:
//! `cli` (clap) -> `config` (validated settings) -> `commands` (one thin file
//! per subcommand) -> the engines: `backup` (snapshots, verify, retention,
//! restore) and `tfstate` (keys, lock, lock guard, state rules, the guarded
//! state write, migration) -> `store` (the object store trait and its S3 and
//! directory implementations).

pub mod backup;
pub mod cli;
pub mod commands;
pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod localfile;
pub mod location;
pub mod metrics;
pub mod output;
pub mod store;
pub mod tfstate;

pub use error::Error;
