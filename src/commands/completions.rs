//! `tfsync completions SHELL`: the shell's completion script (clap_complete)
//! on stdout. Reads no setting and makes no request.

use crate::cli::CompletionsArgs;
use crate::error::Error;
use std::io::Write;

pub fn run(args: &CompletionsArgs) -> Result<(), Error> {
    let mut cmd = crate::cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tfsync", &mut script);
    std::io::stdout()
        .lock()
        .write_all(&script)
        .map_err(|e| Error::io("stdout", e))
}
