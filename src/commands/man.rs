//! `tfsync man [--dir DIR]`: the man page (clap_mangen), roff on stdout, or
//! one page per command written into DIR. Reads no setting and makes no
//! request.

use crate::cli::{ManArgs, OutputFormat};
use crate::error::Error;
use crate::output::Printer;
use std::path::{Path, PathBuf};

pub fn run(args: &ManArgs) -> Result<(), Error> {
    let out = Printer {
        format: OutputFormat::Text,
        quiet: false,
    };
    let mut cmd = crate::cli::command().disable_help_subcommand(true);
    cmd.build();
    let Some(dir) = &args.dir else {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut page)
            .map_err(|e| Error::Output(format!("cannot render the man page: {e}")))?;
        out.raw(&String::from_utf8_lossy(&page));
        return Ok(());
    };
    if !dir.is_dir() {
        return Err(Error::Config(format!(
            "--dir {}: no such directory: create it first (e.g. mkdir -p {})",
            dir.display(),
            dir.display()
        )));
    }
    let mut written = Vec::new();
    write_pages(cmd, dir, &mut written)?;
    for p in &written {
        out.data(p.display().to_string());
    }
    Ok(())
}

/// The page of `cmd` and of each of its (visible) subcommands.
fn write_pages(cmd: clap::Command, dir: &Path, written: &mut Vec<PathBuf>) -> Result<(), Error> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
        write_pages(sub, dir, written)?;
    }
    let man = clap_mangen::Man::new(cmd);
    let path = dir.join(man.get_filename());
    let path = man.generate_to(dir).map_err(|e| Error::io(path, e))?;
    written.push(path);
    Ok(())
}
