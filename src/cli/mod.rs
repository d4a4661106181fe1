//! Command line: the lexopt loops, the raw values they collect and the help text.
//!
//! Parsing is strict (unknown flags and stray values are errors) and does no I/O beyond reading
//! argv. Values stay as the user typed them (`OsString`): `config` checks them, applies the
//! defaults and builds the settings each part takes. Paths are never forced to UTF-8. The help
//! text is in `help.rs`.

mod completions;
mod help;

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

use lexopt::prelude::*;

pub use self::completions::{Shell, script as completion_script};
pub use self::help::{Topic, flags_of, help, help_for};

/// The parsed command line: which subcommand, with its raw values.
#[derive(Debug)]
pub enum Command {
    /// `run` (also the default) and `tail`.
    Run(Box<RunArgs>),
    Cat(CatArgs),
    Verify(VerifyArgs),
    Parse(ParseArgs),
    Serve(ServeArgs),
    /// `--help`, `SUB --help` or `help [SUB]`.
    Help(Option<Topic>),
    /// `completions bash|zsh|fish`.
    Completions(Shell),
    Version,
}

/// The raw values of `run` and `tail`: `None` where a flag was not given.
#[derive(Debug, Default)]
pub struct RunArgs {
    /// `tail`: print instead of archiving.
    pub tail: bool,
    pub stream: Option<OsString>,
    pub base_url: Option<OsString>,
    pub url: Option<OsString>,
    pub output_dir: Option<PathBuf>,
    pub since: Option<OsString>,
    pub user_agent: Option<OsString>,
    pub ca_file: Option<PathBuf>,
    pub idle_timeout: Option<OsString>,
    pub max_events: Option<OsString>,
    pub max_event_bytes: Option<OsString>,
    pub level: Option<OsString>,
    pub keep_canary: bool,
    pub rotate_minute: Option<OsString>,
    pub rotate_events: Option<OsString>,
    pub rotate_bytes: Option<OsString>,
    pub on_ready: Option<OsString>,
    pub naming: Option<OsString>,
    pub layout: Option<OsString>,
    pub checkpoint_interval: Option<OsString>,
    pub gap_warn: Option<OsString>,
    pub status_port: Option<OsString>,
    pub status_addr: Option<OsString>,
    pub max_silence: Option<OsString>,
    pub keep_days: Option<OsString>,
    pub max_archive_bytes: Option<OsString>,
    pub log_timestamps: Option<OsString>,
    pub tee: bool,
    pub format: Option<OsString>,
    /// Net verbosity: +1 per `-v`, -1 per `-q`.
    pub verbosity: i32,
    pub filter: FilterArgs,
}

/// The raw filter flags shared by `run`, `tail` and `cat` (`from`/`to`: `cat` only).
#[derive(Debug, Default)]
pub struct FilterArgs {
    pub wiki: Option<OsString>,
    pub types: Option<OsString>,
    pub domain: Option<OsString>,
    pub namespace: Option<OsString>,
    pub no_bots: bool,
    pub bots_only: bool,
    pub pattern: Option<OsString>,
    pub invert_match: bool,
    pub from: Option<OsString>,
    pub to: Option<OsString>,
}

/// The raw values of `cat`.
#[derive(Debug, Default)]
pub struct CatArgs {
    pub paths: Vec<PathBuf>,
    pub filter: FilterArgs,
    pub count: bool,
}

/// The raw values of `verify`.
#[derive(Debug, Default)]
pub struct VerifyArgs {
    pub dir: Option<PathBuf>,
    pub gap: Option<OsString>,
    pub offset_slack: Option<OsString>,
    pub json: bool,
}

/// The raw values of `parse`.
#[derive(Debug, Default)]
pub struct ParseArgs {
    pub input: Option<PathBuf>,
}

/// The raw values of `serve`.
#[derive(Debug, Default)]
pub struct ServeArgs {
    pub inputs: Vec<PathBuf>,
    pub addr: Option<OsString>,
    pub port: Option<OsString>,
    pub retry: Option<OsString>,
    pub rate: Option<OsString>,
    pub disconnect_every: Option<OsString>,
    pub cut_mid_event: bool,
    pub stall_after: Option<OsString>,
    pub status_first: Option<OsString>,
    pub status_later: Option<OsString>,
    pub retry_after: Option<OsString>,
    pub keepalive: Option<OsString>,
    pub id_offsets: bool,
    pub max_connections_per_ip: Option<OsString>,
    pub chaos: Option<OsString>,
    pub verbosity: i32,
}

/// A usage error: what was wrong, shown with a hint to `--help`.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    /// A usage error with this message (lower case, naming the flag).
    pub fn usage(message: impl Into<String>) -> Error {
        Error(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}\nTry 'wikistream-archiver --help' for more information.",
            self.0
        )
    }
}

impl std::error::Error for Error {}

impl From<lexopt::Error> for Error {
    fn from(e: lexopt::Error) -> Error {
        Error(e.to_string())
    }
}

/// Where the `run` loop stands: before any subcommand word, after `run`, or after `tail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Implicit,
    Run,
    Tail,
}

/// Parses the whole command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let mut parser = lexopt::Parser::from_args(args);
    run_cmd(&mut parser)
}

/// The top-level loop, which is also `run`'s and `tail`'s: run flags may come without the `run`
/// word, and a subcommand word hands the parser on to that subcommand's loop.
fn run_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = RunArgs::default();
    let mut mode = Mode::Implicit;
    let mut n_run_flags = 0;
    while let Some(arg) = parser.next()? {
        let archiving = mode != Mode::Tail;
        let topic = match mode {
            Mode::Tail => Topic::Tail,
            Mode::Implicit | Mode::Run => Topic::Run,
        };
        match arg {
            Short('h') | Long("help") => {
                return Ok(Command::Help((mode != Mode::Implicit).then_some(topic)));
            }
            Short('V') | Long("version") if mode == Mode::Implicit => return Ok(Command::Version),
            Value(word) if mode == Mode::Implicit => {
                match word.to_str() {
                    Some("run") => mode = Mode::Run,
                    _ if n_run_flags > 0 => {
                        return Err(Error::usage(format!(
                            "run options must not come before '{}'",
                            word.to_string_lossy()
                        )));
                    }
                    Some("tail") => {
                        mode = Mode::Tail;
                        raw.tail = true;
                    }
                    Some("cat") => return cat_cmd(parser),
                    Some("verify") => return verify_cmd(parser),
                    Some("parse") => return parse_cmd(parser),
                    Some("serve") => return serve_cmd(parser),
                    Some("help") => return help_cmd(parser),
                    Some("completions") => return completions_cmd(parser),
                    _ => {
                        return Err(Error::usage(format!(
                            "unknown subcommand '{}'",
                            word.to_string_lossy()
                        )));
                    }
                }
                continue;
            }
            // Flags of `run` and `tail`.
            Long("stream") => raw.stream = Some(parser.value()?),
            Long("base-url") => raw.base_url = Some(parser.value()?),
            Long("url") => raw.url = Some(parser.value()?),
            Long("since") => raw.since = Some(parser.value()?),
            Long("user-agent") => raw.user_agent = Some(parser.value()?),
            Long("ca-file") => raw.ca_file = Some(parser.value()?.into()),
            Long("idle-timeout") => raw.idle_timeout = Some(parser.value()?),
            Long("max-events") => raw.max_events = Some(parser.value()?),
            Long("max-event-bytes") => raw.max_event_bytes = Some(parser.value()?),
            Long("keep-canary") => raw.keep_canary = true,
            Long("format") => raw.format = Some(parser.value()?),
            Long("log-timestamps") => raw.log_timestamps = Some(parser.value()?),
            Short('v') | Long("verbose") => raw.verbosity += 1,
            Short('q') | Long("quiet") => raw.verbosity -= 1,
            // Flags of `run` only: `tail` writes no files and serves no health.
            Long("output-dir") if archiving => raw.output_dir = Some(parser.value()?.into()),
            Long("level") if archiving => raw.level = Some(parser.value()?),
            Long("rotate-minute") if archiving => raw.rotate_minute = Some(parser.value()?),
            Long("rotate-events") if archiving => raw.rotate_events = Some(parser.value()?),
            Long("rotate-bytes") if archiving => raw.rotate_bytes = Some(parser.value()?),
            Long("on-ready") if archiving => raw.on_ready = Some(parser.value()?),
            Long("naming") if archiving => raw.naming = Some(parser.value()?),
            Long("layout") if archiving => raw.layout = Some(parser.value()?),
            Long("checkpoint-interval") if archiving => {
                raw.checkpoint_interval = Some(parser.value()?)
            }
            Long("gap-warn") if archiving => raw.gap_warn = Some(parser.value()?),
            // `--status_port` is the Python archiver's spelling.
            Long("status-port" | "status_port") if archiving => {
                raw.status_port = Some(parser.value()?)
            }
            Long("status-addr") if archiving => raw.status_addr = Some(parser.value()?),
            Long("max-silence") if archiving => raw.max_silence = Some(parser.value()?),
            Long("keep-days") if archiving => raw.keep_days = Some(parser.value()?),
            Long("max-archive-bytes") if archiving => raw.max_archive_bytes = Some(parser.value()?),
            Long("tee") if archiving => raw.tee = true,
            other => match FilterFlag::of(&other, false) {
                Some(flag) => raw.filter.take(flag, parser)?,
                None => return Err(unexpected(other, topic)),
            },
        }
        n_run_flags += 1;
    }
    Ok(Command::Run(Box::new(raw)))
}

/// A filter flag, recognised once for every loop that takes filters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FilterFlag {
    Wiki,
    Type,
    Domain,
    Namespace,
    NoBots,
    BotsOnly,
    Match,
    InvertMatch,
    From,
    To,
}

impl FilterFlag {
    /// The filter flag `arg` names; `--from` and `--to` only where `times` is set (`cat`).
    fn of(arg: &lexopt::Arg<'_>, times: bool) -> Option<FilterFlag> {
        Some(match arg {
            Long("wiki") => FilterFlag::Wiki,
            Long("type") => FilterFlag::Type,
            Long("domain") => FilterFlag::Domain,
            Long("namespace") => FilterFlag::Namespace,
            Long("no-bots") => FilterFlag::NoBots,
            Long("bots-only") => FilterFlag::BotsOnly,
            Long("match") => FilterFlag::Match,
            Long("invert-match") => FilterFlag::InvertMatch,
            Long("from") if times => FilterFlag::From,
            Long("to") if times => FilterFlag::To,
            _ => return None,
        })
    }
}

impl FilterArgs {
    /// Records `flag`, reading its value where it takes one.
    fn take(&mut self, flag: FilterFlag, parser: &mut lexopt::Parser) -> Result<(), Error> {
        let slot = match flag {
            FilterFlag::NoBots => {
                self.no_bots = true;
                return Ok(());
            }
            FilterFlag::BotsOnly => {
                self.bots_only = true;
                return Ok(());
            }
            FilterFlag::InvertMatch => {
                self.invert_match = true;
                return Ok(());
            }
            FilterFlag::Wiki => &mut self.wiki,
            FilterFlag::Type => &mut self.types,
            FilterFlag::Domain => &mut self.domain,
            FilterFlag::Namespace => &mut self.namespace,
            FilterFlag::Match => &mut self.pattern,
            FilterFlag::From => &mut self.from,
            FilterFlag::To => &mut self.to,
        };
        *slot = Some(parser.value()?);
        Ok(())
    }
}

fn cat_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = CatArgs::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(Topic::Cat))),
            Long("count") => raw.count = true,
            Value(path) => raw.paths.push(PathBuf::from(path)),
            other => match FilterFlag::of(&other, true) {
                Some(flag) => raw.filter.take(flag, parser)?,
                None => return Err(unexpected(other, Topic::Cat)),
            },
        }
    }
    Ok(Command::Cat(raw))
}

fn verify_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = VerifyArgs::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(Topic::Verify))),
            Long("gap") => raw.gap = Some(parser.value()?),
            Long("offset-slack") => raw.offset_slack = Some(parser.value()?),
            Long("json") => raw.json = true,
            Value(path) if raw.dir.is_none() => raw.dir = Some(PathBuf::from(path)),
            other => return Err(unexpected(other, Topic::Verify)),
        }
    }
    Ok(Command::Verify(raw))
}

fn parse_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = ParseArgs::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(Topic::Parse))),
            Value(path) if raw.input.is_none() => raw.input = Some(PathBuf::from(path)),
            other => return Err(unexpected(other, Topic::Parse)),
        }
    }
    Ok(Command::Parse(raw))
}

fn serve_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = ServeArgs::default();
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(Topic::Serve))),
            Long("input") => raw.inputs.push(PathBuf::from(parser.value()?)),
            Long("addr") => raw.addr = Some(parser.value()?),
            Long("port") => raw.port = Some(parser.value()?),
            Long("retry") => raw.retry = Some(parser.value()?),
            Long("rate") => raw.rate = Some(parser.value()?),
            Long("disconnect-every") => raw.disconnect_every = Some(parser.value()?),
            Long("cut-mid-event") => raw.cut_mid_event = true,
            Long("id-offsets") => raw.id_offsets = true,
            // Timestamps are the default now, as on EventStreams; the flag stays accepted.
            Long("id-timestamps") => raw.id_offsets = false,
            Long("max-connections-per-ip") => raw.max_connections_per_ip = Some(parser.value()?),
            Long("chaos") => raw.chaos = Some(parser.value()?),
            Long("stall-after") => raw.stall_after = Some(parser.value()?),
            Long("status-first") => raw.status_first = Some(parser.value()?),
            Long("status-later") => raw.status_later = Some(parser.value()?),
            Long("retry-after") => raw.retry_after = Some(parser.value()?),
            Long("keepalive") => raw.keepalive = Some(parser.value()?),
            Short('v') | Long("verbose") => raw.verbosity += 1,
            Short('q') | Long("quiet") => raw.verbosity -= 1,
            other => return Err(unexpected(other, Topic::Serve)),
        }
    }
    Ok(Command::Serve(raw))
}

/// `completions SHELL`.
fn completions_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let shell = match parser.next()? {
        Some(Value(word)) => word.to_str().and_then(Shell::of).ok_or_else(|| {
            Error::usage(format!(
                "unknown shell '{}' (bash, zsh or fish)",
                word.to_string_lossy()
            ))
        })?,
        Some(other) => return Err(other.unexpected().into()),
        None => return Err(Error::usage("completions needs a shell: bash, zsh or fish")),
    };
    if let Some(extra) = parser.next()? {
        return Err(extra.unexpected().into());
    }
    Ok(Command::Completions(shell))
}

/// `help [SUBCOMMAND]`.
fn help_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let Some(arg) = parser.next()? else {
        return Ok(Command::Help(None));
    };
    let topic = match arg {
        Value(word) => word.to_str().and_then(Topic::of).ok_or_else(|| {
            Error::usage(format!(
                "unknown subcommand '{}' (run, tail, cat, verify, parse or serve)",
                word.to_string_lossy()
            ))
        })?,
        other => return Err(other.unexpected().into()),
    };
    if let Some(extra) = parser.next()? {
        return Err(extra.unexpected().into());
    }
    Ok(Command::Help(Some(topic)))
}

/// The error for an argument `topic` does not take, with the closest flag it does take when
/// the argument looks like a typo of one.
fn unexpected(arg: lexopt::Arg<'_>, topic: Topic) -> Error {
    let suggestion = match &arg {
        Long(name) => closest(&format!("--{name}"), &flags_of(topic)),
        _ => None,
    };
    let Error(message) = Error::from(arg.unexpected());
    match suggestion {
        Some(flag) => Error(format!("{message}; did you mean '{flag}'?")),
        None => Error(message),
    }
}

/// The candidate nearest to `word` by edit distance, if near enough to be a typo: at most two
/// edits, or a quarter of the word's length for long ones.
fn closest(word: &str, candidates: &[String]) -> Option<String> {
    let limit = (word.chars().count() / 4).max(2);
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, c)| c.clone())
}

/// Levenshtein distance, counting an adjacent transposition as one edit.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![(0..=b.len()).collect::<Vec<usize>>()];
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (rows[i - 1][j] + 1)
                .min(row[j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(rows[i - 2][j - 2] + 1);
            }
        }
        rows.push(row);
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, Error> {
        parse_args(args.iter().map(OsString::from))
    }

    fn run_args(args: &[&str]) -> RunArgs {
        match parse(args) {
            Ok(Command::Run(run)) => *run,
            other => panic!("expected run for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn run_is_the_default_and_collects_raw_values() {
        let run = run_args(&["--level", "9", "--wiki", "enwiki", "--status_port", "0"]);
        assert!(!run.tail);
        assert_eq!(run.level.as_deref(), Some("9".as_ref()));
        assert_eq!(run.filter.wiki.as_deref(), Some("enwiki".as_ref()));
        assert_eq!(run.status_port.as_deref(), Some("0".as_ref()));
        assert!(run.stream.is_none());
    }

    #[test]
    fn explicit_run_takes_the_same_flags_before_and_after() {
        let run = run_args(&["-v", "run", "--stream", "a,b", "-v"]);
        assert_eq!(run.verbosity, 2);
        assert_eq!(run.stream.as_deref(), Some("a,b".as_ref()));
        assert!(parse(&["-v", "cat"]).is_err());
    }

    #[test]
    fn tail_refuses_archive_flags() {
        let tail = run_args(&["tail", "--stream", "x", "--format", "json", "--no-bots"]);
        assert!(tail.tail && tail.filter.no_bots);
        for flag in [
            "--output-dir",
            "--level",
            "--status-port",
            "--tee",
            "--on-ready",
        ] {
            let message = parse(&["tail", flag, "1"]).expect_err(flag).to_string();
            assert!(message.contains(flag), "{message}");
        }
    }

    #[test]
    fn cat_takes_times_and_run_does_not() {
        match parse(&["cat", "--from", "1", "--to", "2", "a", "b"]) {
            Ok(Command::Cat(cat)) => {
                assert_eq!(cat.paths.len(), 2);
                assert!(cat.filter.from.is_some() && cat.filter.to.is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["--from", "1"]).is_err());
    }

    #[test]
    fn unknown_words_and_flags_name_themselves() {
        for (args, needle) in [
            (&["frobnicate"][..], "frobnicate"),
            (&["--bogus"][..], "--bogus"),
            (&["verify", "a", "b"][..], "b"),
            (&["serve", "--tee"][..], "--tee"),
        ] {
            let message = parse(args).expect_err("should fail").to_string();
            assert!(message.contains(needle), "{args:?}: {message}");
            assert!(message.contains("--help"), "{args:?}: {message}");
        }
    }

    #[test]
    fn typos_get_the_closest_flag_of_their_subcommand() {
        let message = parse(&["--outptu-dir", "x"]).expect_err("typo").to_string();
        assert!(
            message.contains("did you mean '--output-dir'?"),
            "{message}"
        );
        let message = parse(&["serve", "--inptu", "x"])
            .expect_err("typo")
            .to_string();
        assert!(message.contains("did you mean '--input'?"), "{message}");
        // tail does not take --output-dir, so it is not offered there.
        let message = parse(&["tail", "--outptu-dir", "x"])
            .expect_err("typo")
            .to_string();
        assert!(!message.contains("--output-dir'?"), "{message}");
        let message = parse(&["--frobnicate"]).expect_err("unknown").to_string();
        assert!(!message.contains("did you mean"), "{message}");
        assert_eq!(
            edit_distance("--outptu-dir", "--output-dir"),
            1,
            "a transposition is one edit"
        );
        assert_eq!(edit_distance("abc", "abc"), 0);
        assert_eq!(edit_distance("", "ab"), 2);
    }

    #[test]
    fn help_is_per_subcommand() {
        for (args, topic) in [
            (&["--help"][..], None),
            (&["help"][..], None),
            (&["run", "--help"][..], Some(Topic::Run)),
            (&["help", "serve"][..], Some(Topic::Serve)),
            (&["serve", "--help"][..], Some(Topic::Serve)),
            (&["tail", "-h"][..], Some(Topic::Tail)),
            (&["help", "verify"][..], Some(Topic::Verify)),
            (&["cat", "--help"][..], Some(Topic::Cat)),
        ] {
            match parse(args) {
                Ok(Command::Help(got)) => assert_eq!(got, topic, "{args:?}"),
                other => panic!("{args:?}: {other:?}"),
            }
        }
        assert!(parse(&["help", "frobnicate"]).is_err());
        let serve = help_for(Some(Topic::Serve));
        assert!(
            serve.contains("--disconnect-every") && !serve.contains("--output-dir"),
            "{serve}"
        );
        let top = help_for(None);
        assert!(
            top.contains("--output-dir") && top.contains("help tail") && !top.contains("--chaos")
        );
        let verify = flags_of(Topic::Verify);
        assert!(
            verify.contains(&"--offset-slack".to_string())
                && !verify.contains(&"--stream".to_string())
        );
    }

    /// Long flags named in `text`.
    fn long_flags(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_lowercase() || c == '-' || c == '_'))
            .filter(|w| w.starts_with("--") && w.len() > 2 && !w.starts_with("---"))
            .map(|w| w.trim_end_matches('-').to_string())
            .collect()
    }

    #[test]
    fn the_man_page_lists_exactly_the_flags_of_the_help() {
        let man = include_str!("../../packaging/man/wikistream-archiver.1").replace("\\-", "-");
        let in_help = long_flags(&help());
        let in_man = long_flags(&man);
        let missing: Vec<_> = in_help.difference(&in_man).collect();
        let extra: Vec<_> = in_man.difference(&in_help).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "regenerate it (make man): missing from the man page {missing:?}, not in --help {extra:?}"
        );
        assert!(in_help.len() > 60, "{} flags", in_help.len());
        for section in [
            "EXIT STATUS",
            "FILES",
            "EXAMPLES",
            "SERVE OPTIONS",
            "VERIFY",
            "CAT",
            "TAIL",
        ] {
            assert!(man.contains(&format!(".SH {section}")), "{section}");
        }
    }

    #[test]
    fn help_lists_every_long_flag_in_this_file() {
        // Every `Long("…")` pattern accepted above must be documented in the help.
        let help = help();
        let source = include_str!("mod.rs");
        let source = &source[..source.find("#[cfg(test)]").expect("tests at the end")];
        let mut n_flags = 0;
        for piece in source.split("Long(\"").skip(1) {
            for name in piece.split(")").next().unwrap_or_default().split('"') {
                if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
                    continue;
                }
                n_flags += 1;
                assert!(
                    help.contains(&format!("--{name}")),
                    "--{name} missing from help"
                );
            }
        }
        assert!(
            n_flags > 50,
            "found only {n_flags} flags: the scan is broken"
        );
    }
}
