//! `tfsync completions SHELL`: the shell's completion script (clap_complete)
//! on stdout. Reads no setting and makes no request.

use crate::cli::CompletionsArgs;
use crate::cli::OutputFormat;
use crate::error::Error;
use crate::output::Printer;

pub fn run(args: &CompletionsArgs) -> Result<(), Error> {
    let mut cmd = crate::cli::command();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "tfsync", &mut script);
    let out = Printer {
        format: OutputFormat::Text,
        quiet: false,
    };
    out.raw(&String::from_utf8_lossy(&script));
    Ok(())
}
