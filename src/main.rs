use tfsync::{cli, commands, exit};

fn main() {
    let opts = cli::parse();
    let json = opts.global.output == tfsync::cli::OutputFormat::Json;
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(exit::ERROR);
        }
    };
    let code = match runtime.block_on(commands::run(opts)) {
        Ok(()) => exit::OK,
        Err(e) => {
            let code = exit::code(&e);
            if json {
                eprintln!(
                    "{}",
                    serde_json::json!({ "error": e.to_string(), "exit_code": code })
                );
            } else {
                eprintln!("error: {e}");
            }
            code
        }
    };
    // Data that could not be written (a full disk) is a failure too.
    let code = if code == exit::OK && tfsync::output::stdout_failed() {
        exit::ERROR
    } else {
        code
    };
    // A signal may have ended the command while a worker thread was still
    // writing a temporary file: remove it (a completed write is in place).
    tfsync::localfile::remove_leftover_temps();
    std::process::exit(code);
}
