//! Command line: the lexopt loops, the raw values they collect, the help text and the
//! completions, all made from one table of flags (`flags.rs`).
//!
//! Parsing is strict (unknown flags and stray values are errors) and does no I/O beyond reading
//! argv. Values stay as the user typed them (`OsString`): `config` checks them, applies the
//! defaults and builds the settings each part takes. Paths are never forced to UTF-8.

mod completions;
pub mod flags;
mod help;

use std::ffi::{OsStr, OsString};
use std::fmt;

use lexopt::prelude::*;

pub use self::completions::{Shell, script as completion_script};
use self::flags::Flag;
pub use self::flags::Topic;
pub use self::help::{help, help_for};

/// The parsed command line: which subcommand, with its raw values.
#[derive(Debug)]
pub enum Command {
    /// `run` (also the default) and `tail` (`Args::topic` says which).
    Run(Args),
    Cat(Args),
    Verify(Args),
    Parse(Args),
    Serve(Args),
    Ship(Args),
    Schema(Args),
    /// `--help`, `SUB --help` or `help [SUB]`.
    Help(Option<Topic>),
    /// `completions bash|zsh|fish`.
    Completions(Shell),
    Version,
}

/// How many values without a flag a subcommand takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Positionals {
    None,
    One,
    Many,
}

/// A subcommand word, with what the usage says of it.
#[derive(Debug)]
pub struct Subcommand {
    pub topic: Topic,
    pub name: &'static str,
    /// What follows the program name in the usage (`[run] [OPTIONS]`).
    pub synopsis: &'static str,
    pub summary: &'static str,
    pub positionals: Positionals,
}

/// The subcommands with help topics, in the order the usage lists them.
pub static SUBCOMMANDS: [Subcommand; 8] = [
    Subcommand {
        topic: Topic::Run,
        name: "run",
        synopsis: "[run] [OPTIONS]",
        summary: "archive a stream (the default)",
        positionals: Positionals::None,
    },
    Subcommand {
        topic: Topic::Tail,
        name: "tail",
        synopsis: "tail [OPTIONS]",
        summary: "print a stream's events instead of archiving them",
        positionals: Positionals::None,
    },
    Subcommand {
        topic: Topic::Cat,
        name: "cat",
        synopsis: "cat [OPTIONS] [PATH..]",
        summary: "print archived events (files or directories)",
        positionals: Positionals::Many,
    },
    Subcommand {
        topic: Topic::Verify,
        name: "verify",
        synopsis: "verify [OPTIONS] DIR",
        summary: "check an archive directory for damage and gaps",
        positionals: Positionals::One,
    },
    Subcommand {
        topic: Topic::Parse,
        name: "parse",
        synopsis: "parse [FILE]",
        summary: "print the SSE events of FILE (or stdin) as JSON lines",
        positionals: Positionals::One,
    },
    Subcommand {
        topic: Topic::Serve,
        name: "serve",
        synopsis: "serve --input PATH..",
        summary: "replay archives as an EventStreams server",
        positionals: Positionals::None,
    },
    Subcommand {
        topic: Topic::Ship,
        name: "ship",
        synopsis: "ship --to URL [OPTIONS] DIR",
        summary: "upload completed files to S3, or check the bucket",
        positionals: Positionals::One,
    },
    Subcommand {
        topic: Topic::Schema,
        name: "schema",
        synopsis: "schema [--engine E] DIR",
        summary: "print table definitions for DuckDB, Spark and Athena",
        positionals: Positionals::One,
    },
];

/// The words that name no help topic of their own.
pub const OTHER_WORDS: [&str; 2] = ["help", "completions"];

impl Topic {
    /// The subcommand named `word`.
    pub fn of(word: &str) -> Option<Topic> {
        SUBCOMMANDS
            .iter()
            .find(|sub| sub.name == word)
            .map(|sub| sub.topic)
    }

    /// This topic's subcommand.
    pub fn subcommand(self) -> &'static Subcommand {
        SUBCOMMANDS
            .iter()
            .find(|sub| sub.topic == self)
            .expect("every topic is a subcommand")
    }
}

/// The raw values of one subcommand: each flag given, in order, with its value (empty for a
/// switch), and the values given without a flag.
#[derive(Debug)]
pub struct Args {
    pub topic: Topic,
    given: Vec<(&'static Flag, OsString)>,
    pub positionals: Vec<OsString>,
}

impl Args {
    fn new(topic: Topic) -> Args {
        Args {
            topic,
            given: Vec::new(),
            positionals: Vec::new(),
        }
    }

    /// The table's flag `long`; a name the table lacks is a bug in the caller.
    fn declared(&self, long: &str) -> &'static Flag {
        // Two subcommands may give one name two meanings (`cat --to`, `ship --to`).
        let named = || flags::FLAGS.iter().filter(|f| f.long == long);
        named()
            .find(|f| f.takes.contains(&self.topic))
            .or_else(|| named().next())
            .unwrap_or_else(|| panic!("--{long} is not in the table of flags"))
    }

    /// Every value given to `--long`, in order.
    pub fn values<'a>(&'a self, long: &str) -> impl Iterator<Item = &'a OsStr> {
        let flag = self.declared(long);
        self.given
            .iter()
            .filter(move |(f, _)| std::ptr::eq(*f, flag))
            .map(|(_, value)| value.as_os_str())
    }

    /// The last value given to `--long`, if any.
    pub fn value(&self, long: &str) -> Option<&OsStr> {
        self.values(long).last()
    }

    /// How often the switch `--long` was given.
    pub fn count(&self, long: &str) -> usize {
        self.values(long).count()
    }

    /// Whether the switch `--long` was given.
    pub fn is_set(&self, long: &str) -> bool {
        self.count(long) > 0
    }

    /// Of the switches `longs`, the one given last.
    pub fn last_of<'n>(&self, longs: &[&'n str]) -> Option<&'n str> {
        let flags: Vec<&Flag> = longs.iter().map(|long| self.declared(long)).collect();
        let (flag, _) = self
            .given
            .iter()
            .rev()
            .find(|(f, _)| flags.iter().any(|wanted| std::ptr::eq(*f, *wanted)))?;
        longs.iter().copied().find(|long| *long == flag.long)
    }

    /// `-v` minus `-q`.
    pub fn verbosity(&self) -> i32 {
        self.count("verbose") as i32 - self.count("quiet") as i32
    }

    /// The flag of this subcommand that `arg` names, if any.
    fn flag_of(&self, arg: &lexopt::Arg<'_>) -> Option<&'static Flag> {
        match arg {
            Long(name) => flags::by_long(self.topic, name),
            Short(c) => flags::by_short(self.topic, *c),
            Value(_) => None,
        }
    }

    /// Records `flag`, reading its value where it takes one.
    fn take(&mut self, flag: &'static Flag, parser: &mut lexopt::Parser) -> Result<(), Error> {
        let value = match flag.value {
            Some(_) => parser.value()?,
            None => OsString::new(),
        };
        self.given.push((flag, value));
        Ok(())
    }
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

/// Parses the whole command line (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = OsString>) -> Result<Command, Error> {
    let mut parser = lexopt::Parser::from_args(args);
    run_cmd(&mut parser)
}

/// The top-level loop, which is also `run`'s and `tail`'s: run flags may come without the `run`
/// word, and a subcommand word hands the parser on to that subcommand's loop.
fn run_cmd(parser: &mut lexopt::Parser) -> Result<Command, Error> {
    let mut raw = Args::new(Topic::Run);
    // No subcommand word yet: `run` is implied, and a word may still choose another.
    let mut implicit = true;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => {
                return Ok(Command::Help((!implicit).then_some(raw.topic)));
            }
            Short('V') | Long("version") if implicit => return Ok(Command::Version),
            Value(word) if implicit => {
                let topic = word.to_str().and_then(Topic::of);
                if topic != Some(Topic::Run) && !raw.given.is_empty() {
                    return Err(Error::usage(format!(
                        "run options must not come before '{}'",
                        word.to_string_lossy()
                    )));
                }
                match (topic, word.to_str()) {
                    (Some(Topic::Run | Topic::Tail), _) => {
                        raw.topic = topic.expect("matched");
                        implicit = false;
                    }
                    (Some(topic), _) => return sub_cmd(parser, topic),
                    (None, Some("help")) => return help_cmd(parser),
                    (None, Some("completions")) => return completions_cmd(parser),
                    (None, _) => {
                        return Err(Error::usage(format!(
                            "unknown subcommand '{}'",
                            word.to_string_lossy()
                        )));
                    }
                }
            }
            other => match raw.flag_of(&other) {
                Some(flag) => raw.take(flag, parser)?,
                None => return Err(unexpected(other, raw.topic)),
            },
        }
    }
    Ok(Command::Run(raw))
}

/// The loop of `cat`, `verify`, `parse` and `serve`: the flags the table gives `topic`, and
/// its values without a flag.
fn sub_cmd(parser: &mut lexopt::Parser, topic: Topic) -> Result<Command, Error> {
    let mut raw = Args::new(topic);
    let positionals = topic.subcommand().positionals;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help(Some(topic))),
            Value(value) if takes_another(positionals, raw.positionals.len()) => {
                raw.positionals.push(value)
            }
            other => match raw.flag_of(&other) {
                Some(flag) => raw.take(flag, parser)?,
                None => return Err(unexpected(other, topic)),
            },
        }
    }
    Ok(match topic {
        Topic::Run | Topic::Tail => Command::Run(raw),
        Topic::Cat => Command::Cat(raw),
        Topic::Verify => Command::Verify(raw),
        Topic::Parse => Command::Parse(raw),
        Topic::Serve => Command::Serve(raw),
        Topic::Ship => Command::Ship(raw),
        Topic::Schema => Command::Schema(raw),
    })
}

/// Whether a subcommand that takes `positionals` takes one more after `n_given`.
fn takes_another(positionals: Positionals, n_given: usize) -> bool {
    match positionals {
        Positionals::None => false,
        Positionals::One => n_given == 0,
        Positionals::Many => true,
    }
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
            let names: Vec<&str> = SUBCOMMANDS.iter().map(|sub| sub.name).collect();
            let (last, rest) = names.split_last().expect("there are subcommands");
            Error::usage(format!(
                "unknown subcommand '{}' ({} or {last})",
                word.to_string_lossy(),
                rest.join(", ")
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
        Long(name) => closest(&format!("--{name}"), &flags::long_names(topic)),
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

    fn run_args(args: &[&str]) -> Args {
        match parse(args) {
            Ok(Command::Run(run)) => run,
            other => panic!("expected run for {args:?}, got {other:?}"),
        }
    }

    #[test]
    fn run_is_the_default_and_collects_raw_values() {
        let run = run_args(&["--level", "9", "--wiki", "enwiki", "--status_port", "0"]);
        assert_eq!(run.topic, Topic::Run);
        assert_eq!(run.value("level"), Some("9".as_ref()));
        assert_eq!(run.value("wiki"), Some("enwiki".as_ref()));
        assert_eq!(run.value("status-port"), Some("0".as_ref()));
        assert!(run.value("stream").is_none());
    }

    #[test]
    fn explicit_run_takes_the_same_flags_before_and_after() {
        let run = run_args(&["-v", "run", "--stream", "a,b", "-v"]);
        assert_eq!(run.verbosity(), 2);
        assert_eq!(run.value("stream"), Some("a,b".as_ref()));
        assert!(parse(&["-v", "cat"]).is_err());
    }

    #[test]
    fn tail_refuses_archive_flags() {
        let tail = run_args(&["tail", "--stream", "x", "--format", "json", "--no-bots"]);
        assert!(tail.topic == Topic::Tail && tail.is_set("no-bots"));
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
                assert_eq!(cat.positionals.len(), 2);
                assert!(cat.value("from").is_some() && cat.value("to").is_some());
            }
            other => panic!("{other:?}"),
        }
        assert!(parse(&["--from", "1"]).is_err());
    }

    #[test]
    fn the_last_value_and_the_last_switch_win() {
        let Ok(Command::Serve(serve)) = parse(&[
            "serve",
            "--input",
            "a",
            "--input",
            "b",
            "--id-offsets",
            "--id-timestamps",
            "--port",
            "1",
            "--port",
            "2",
        ]) else {
            panic!("serve")
        };
        let inputs: Vec<&OsStr> = serve.values("input").collect();
        assert_eq!(inputs, [OsStr::new("a"), OsStr::new("b")]);
        assert_eq!(serve.value("port"), Some("2".as_ref()));
        assert_eq!(
            serve.last_of(&["id-offsets", "id-timestamps"]),
            Some("id-timestamps")
        );
    }

    #[test]
    fn unknown_words_and_flags_name_themselves() {
        for (args, needle) in [
            (&["frobnicate"][..], "frobnicate"),
            (&["--bogus"][..], "--bogus"),
            (&["verify", "a", "b"][..], "b"),
            (&["serve", "--tee"][..], "--tee"),
            (&["run", "x"][..], "x"),
            (
                &["help", "x"][..],
                "run, tail, cat, verify, parse, serve, ship or schema",
            ),
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
    }

    /// Long flags named in `text`.
    fn long_flags(text: &str) -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c)))
            .filter(|w| w.starts_with("--") && w.len() > 2 && !w.starts_with("---"))
            .map(|w| w.trim_end_matches('-').to_string())
            .collect()
    }

    #[test]
    fn each_help_lists_exactly_the_flags_its_subcommand_takes() {
        for sub in &SUBCOMMANDS {
            // The usage names other subcommands' flags (`serve --input`); the rest may not.
            let text = help_for(Some(sub.topic));
            let sections = text.split("\n\n").filter(|s| !s.starts_with("USAGE"));
            let in_help = long_flags(&sections.collect::<Vec<_>>().join("\n\n"));
            for flag in flags::of(sub.topic) {
                for name in [Some(flag.long), flag.alias].into_iter().flatten() {
                    let name = format!("--{name}");
                    assert!(in_help.contains(&name), "{}: {name} missing", sub.name);
                }
            }
            for name in &in_help {
                // Prose may name another subcommand's flag (`--keep-canary` in verify's), but
                // only a flag that exists.
                let declared = SUBCOMMANDS
                    .iter()
                    .any(|other| flags::long_names(other.topic).contains(name));
                assert!(
                    declared,
                    "{}: the help names {name}, which nothing takes",
                    sub.name
                );
            }
        }
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
}
