//! The domain: where Terraform keeps states and locks, what a lock says, what
//! a state says, and the rules for replacing one. Nothing here prints.

pub mod keys;
pub mod lock;
pub mod outputs;
pub mod scan;
pub mod state;
pub mod workspaces;
