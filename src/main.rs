//! wikistream-archiver: stores Wikimedia EventStreams as rotating, compressed NDJSON files.
//!
//! This file is thin on purpose: build the configuration from the command line, set up logging,
//! run the subcommand and turn its result into one of the documented exit codes. Everything
//! else lives in modules.

use wikistream_archiver::config::{self, Command, Logging};
use wikistream_archiver::{archive, cli, run, tools};

/// The documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExitCode {
    Success = 0,
    Failure = 1,
    Usage = 2,
    /// Another instance holds the output directory (EX_TEMPFAIL: a cron retry is harmless).
    Locked = 75,
}

impl From<ExitCode> for std::process::ExitCode {
    fn from(code: ExitCode) -> Self {
        std::process::ExitCode::from(code as u8)
    }
}

fn main() -> std::process::ExitCode {
    let command = match config::from_args(std::env::args_os().skip(1).collect()) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("wikistream-archiver: {e}");
            return ExitCode::Usage.into();
        }
    };
    let quiet = Logging {
        verbosity: 0,
        timestamps: false,
    };
    let result: Result<(), Box<dyn std::error::Error>> = match command {
        Command::Help(topic) => {
            print!("{}", cli::help_for(topic));
            Ok(())
        }
        Command::Completions(shell) => {
            print!("{}", cli::completion_script(shell));
            Ok(())
        }
        Command::Version => {
            println!("wikistream-archiver {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Run(cfg, logging) => {
            init_logging(logging);
            match run::run(*cfg) {
                Err(e @ run::Error::Archive(archive::Error::Locked { .. })) => {
                    log::error!("{e}");
                    return ExitCode::Locked.into();
                }
                other => other.map_err(Into::into),
            }
        }
        Command::Cat(cfg) => {
            init_logging(quiet);
            passed(tools::cat::run(&cfg))
        }
        Command::Verify(cfg) => {
            init_logging(quiet);
            passed(tools::verify::run(&cfg))
        }
        Command::Parse(cfg) => {
            init_logging(Logging {
                timestamps: true,
                ..quiet
            });
            tools::parse::run(&cfg).map_err(Into::into)
        }
        Command::Ship(cfg) => {
            init_logging(quiet);
            passed(tools::ship::run(&cfg))
        }
        Command::Schema(cfg) => {
            init_logging(quiet);
            tools::schema::run(&cfg).map_err(Into::into)
        }
        Command::Serve(cfg, logging) => {
            init_logging(logging);
            tools::serve::run(cfg).map_err(Into::into)
        }
    };
    match result {
        Ok(()) => ExitCode::Success.into(),
        Err(e) => {
            log::error!("{e}");
            ExitCode::Failure.into()
        }
    }
}

/// A check that ran: `Ok(false)` (damage found, already reported) becomes a quiet failure.
fn passed(result: Result<bool, tools::Error>) -> Result<(), Box<dyn std::error::Error>> {
    match result {
        Ok(true) => Ok(()),
        Ok(false) => Err(Box::new(Reported)),
        Err(e) => Err(e.into()),
    }
}

/// A failure whose details were printed already.
#[derive(Debug)]
struct Reported;

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("problems found (see above)")
    }
}

impl std::error::Error for Reported {}

fn init_logging(logging: Logging) {
    wikistream_archiver::logging::init(logging.verbosity, logging.timestamps);
}
