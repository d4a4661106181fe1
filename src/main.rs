//! wikistream-archiver: stores Wikimedia EventStreams as rotating, compressed NDJSON files.
//!
//! This file is thin on purpose: parse the command line, set up logging, run the subcommand and
//! turn its result into one of the documented exit codes. Everything else lives in modules.

use std::io::Write;

use wikistream_archiver::cli::{self, Command};
use wikistream_archiver::{archive, run, tools};

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
    let command = match cli::parse_args(std::env::args_os().skip(1)) {
        Ok(command) => command,
        Err(e) => {
            eprintln!("wikistream-archiver: {e}");
            return ExitCode::Usage.into();
        }
    };
    let result: Result<(), Box<dyn std::error::Error>> = match command {
        Command::Help => {
            print!("{}", cli::HELP);
            Ok(())
        }
        Command::Version => {
            println!("wikistream-archiver {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Run(args) => {
            // `tail` prints events on stdout; its log lines (stderr) stay short.
            let timestamps = args.log_timestamps && args.output.print_format().is_none();
            init_logging(args.verbosity, timestamps);
            match run::run(*args) {
                Err(e @ run::Error::Archive(archive::Error::Locked { .. })) => {
                    log::error!("{e}");
                    return ExitCode::Locked.into();
                }
                other => other.map_err(Into::into),
            }
        }
        Command::Cat(args) => {
            init_logging(0, false);
            passed(tools::cat::run(&args))
        }
        Command::Verify(args) => {
            init_logging(0, false);
            passed(tools::verify::run(&args))
        }
        Command::Parse(args) => {
            init_logging(0, true);
            tools::parse::run(&args).map_err(Into::into)
        }
        Command::Serve(args) => {
            init_logging(args.verbosity, true);
            tools::serve::run(args).map_err(Into::into)
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

/// Logs to stderr with a UTC timestamp. `-v`/`-q` move the level of our own messages from
/// `info`; other crates stay at `warn` unless `RUST_LOG` says otherwise.
fn init_logging(verbosity: i32, timestamps: bool) {
    let level = match verbosity {
        i32::MIN..=-3 => log::LevelFilter::Off,
        -2 => log::LevelFilter::Error,
        -1 => log::LevelFilter::Warn,
        0 => log::LevelFilter::Info,
        1 => log::LevelFilter::Debug,
        _ => log::LevelFilter::Trace,
    };
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level.min(log::LevelFilter::Warn))
        .filter_module("wikistream_archiver", level)
        .parse_env("RUST_LOG")
        .format(move |out, record| {
            if !timestamps {
                return writeln!(out, "{:<5} {}", record.level(), record.args());
            }
            let now = time::OffsetDateTime::now_utc();
            let stamp = now
                .format(time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
                ))
                .unwrap_or_default();
            writeln!(out, "{stamp} {:<5} {}", record.level(), record.args())
        })
        .init();
}
