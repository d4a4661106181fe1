//! `parse [FILE]`: raw SSE bytes in, one JSON object per parser item out.
//!
//! This is the parser's black-box test surface; its output format is fixed:
//! `{"event":…,"data":…,"id":…}` per dispatched event and `{"retry":MS}` per valid retry field.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use crate::sse::{Item, Parser};
use crate::tools::{Error, quiet_on_closed_pipe};

/// What `parse` reads.
#[derive(Debug)]
pub struct Config {
    /// None reads standard input.
    pub input: Option<PathBuf>,
    /// The same limit as `run`'s default, so `parse` shows what the archiver would see.
    pub max_event_bytes: usize,
}

/// Parses FILE (or stdin) and prints the items to stdout.
#[inline(never)] // an entry point of main.rs: see `config::from_args`
pub fn run(args: &Config) -> Result<(), Error> {
    let (mut input, name): (Box<dyn Read>, String) = match &args.input {
        Some(path) => {
            let file = File::open(path)
                .map_err(|e| Error::new(format!("opening {}", path.display()), e))?;
            (Box::new(file), path.display().to_string())
        }
        None => (Box::new(io::stdin().lock()), "standard input".to_string()),
    };
    let mut out = BufWriter::new(io::stdout().lock());
    let mut parser = Parser::new(args.max_event_bytes);
    let mut buf = vec![0u8; 64 * 1024];
    let mut write_result = Ok(());
    loop {
        let n = match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::new(format!("reading {name}"), e)),
        };
        parser.feed(&buf[..n], &mut |item| {
            if write_result.is_ok() {
                write_result = writeln!(out, "{}", item_json(&item, args.max_event_bytes));
            }
        });
        if let Err(e) = std::mem::replace(&mut write_result, Ok(())) {
            return quiet_on_closed_pipe(e);
        }
    }
    parser.finish();
    out.flush().or_else(quiet_on_closed_pipe)
}

fn item_json(item: &Item<'_>, max_event_bytes: usize) -> String {
    let json = |s: &str| serde_json::to_string(s).expect("serialising a string cannot fail");
    match item {
        Item::Event(event) => {
            if event.oversize {
                log::warn!("event of more than {max_event_bytes} bytes cut off");
            }
            format!(
                "{{\"event\":{},\"data\":{},\"id\":{}}}",
                json(event.event_type),
                json(event.data),
                json(event.id)
            )
        }
        Item::Retry(ms) => format!("{{\"retry\":{ms}}}"),
    }
}
