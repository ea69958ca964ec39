//! tfsync: Terraform / OpenTofu remote state on S3-compatible storage.
//!
//! Layers, each knowing only the ones below it:
//! `cli` (clap) -> `config` (validated settings) -> `commands` (one file per
//! subcommand) -> `tfstate` (keys, lock, state rules) -> `store` (the object
//! store trait and its S3 and directory implementations).

pub mod cli;
pub mod commands;
pub mod config;
pub mod duration;
pub mod error;
pub mod exit;
pub mod localfile;
pub mod location;
pub mod output;
pub mod snapshot;
pub mod store;
pub mod tfstate;

pub use error::Error;
