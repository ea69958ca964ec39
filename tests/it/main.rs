//! tfsync's integration tests: one test binary (`cargo test --test it`), one
//! module per area. Tests that run on several servers are named
//! `<module>::<test>::<server>` (see `on_each_server!`), so
//! `cargo test --test it -- ::moto` runs moto's and `--skip race::` leaves out
//! the race test. A new area is one file here and one `mod` line below.

// First, so that `on_each_server!` is in scope in every module below.
#[macro_use]
mod support;

mod azurite;
mod backup;
mod bad_input;
mod budget;
mod cli_local;
mod cli_servers;
mod cli_views;
mod config_sources;
mod conformance;
mod doctor;
mod domain_faults;
mod durations;
mod dynamodb;
mod encryption;
mod faults;
mod fs_safety;
mod gcs;
mod history;
mod kill;
mod local_backend;
mod migrate;
mod oss_layout;
mod prometheus;
mod props;
mod provider_headers;
mod race;
mod security;
mod store_options;
mod transport;
mod versions;
