//! `schema DIR`: table definitions for the engines people read an archive with, made from the
//! directory's layout: a DuckDB view over `read_json` with Hive partitions, a Spark SQL table
//! `USING json PARTITIONED BY (date)`, an Athena / Glue external table over the S3 prefix with
//! partition projection on `date`. `recentchange` gets typed columns (EventStreams'
//! `mediawiki/recentchange` schema); other streams get the columns every event has (`meta`),
//! and the output says the rest is untyped.

use std::path::{Path, PathBuf};

use super::Error;
use crate::archive::listing::{list_dir, walk};
use crate::archive::naming::{Layout, classify, parse_date_dir};

/// Which engine's definitions to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    DuckDb,
    Spark,
    Athena,
}

impl Engine {
    pub const NAMES: [(&'static str, Engine); 3] = [
        ("duckdb", Engine::DuckDb),
        ("spark", Engine::Spark),
        ("athena", Engine::Athena),
    ];
}

#[derive(Debug, Clone)]
pub struct Config {
    pub dir: PathBuf,
    /// `None`: every engine.
    pub engine: Option<Engine>,
    /// Where Athena reads the archive (`s3://BUCKET/PREFIX`, as `--ship-to` puts it).
    pub location: Option<String>,
}

/// A column's type.
#[derive(Debug, Clone, Copy)]
enum Type {
    Text,
    Int,
    Big,
    Bool,
    /// An RFC 3339 time (`meta.dt`).
    Time,
    /// Any JSON (an object in one event, an array in another).
    Json,
    Struct(&'static [(&'static str, Type)]),
}

const META: &[(&str, Type)] = &[
    ("uri", Type::Text),
    ("request_id", Type::Text),
    ("id", Type::Text),
    ("dt", Type::Time),
    ("domain", Type::Text),
    ("stream", Type::Text),
    ("topic", Type::Text),
    ("partition", Type::Int),
    ("offset", Type::Big),
];
const OLD_NEW: &[(&str, Type)] = &[("old", Type::Big), ("new", Type::Big)];

/// `mediawiki/recentchange` (EventStreams' schema 1.0.0).
const RECENTCHANGE: &[(&str, Type)] = &[
    ("$schema", Type::Text),
    ("meta", Type::Struct(META)),
    ("id", Type::Big),
    ("type", Type::Text),
    ("namespace", Type::Int),
    ("title", Type::Text),
    ("title_url", Type::Text),
    ("comment", Type::Text),
    ("parsedcomment", Type::Text),
    ("timestamp", Type::Big),
    ("user", Type::Text),
    ("bot", Type::Bool),
    ("notify_url", Type::Text),
    ("minor", Type::Bool),
    ("patrolled", Type::Bool),
    ("length", Type::Struct(OLD_NEW)),
    ("revision", Type::Struct(OLD_NEW)),
    ("server_url", Type::Text),
    ("server_name", Type::Text),
    ("server_script_path", Type::Text),
    ("wiki", Type::Text),
    ("log_id", Type::Big),
    ("log_type", Type::Text),
    ("log_action", Type::Text),
    ("log_params", Type::Json),
    ("log_action_comment", Type::Text),
];
/// What every EventStreams event has.
const ANY_STREAM: &[(&str, Type)] = &[("$schema", Type::Text), ("meta", Type::Struct(META))];

/// Prints the definitions for every stream of `cfg.dir`.
pub fn run(cfg: &Config) -> Result<(), Error> {
    let (layout, streams) = streams_of(&cfg.dir)?;
    let dir = cfg.dir.canonicalize().unwrap_or_else(|_| cfg.dir.clone());
    let mut out = String::new();
    for (stream, first_date) in &streams {
        let engines = match cfg.engine {
            Some(engine) => vec![engine],
            None => Engine::NAMES.iter().map(|(_, e)| *e).collect(),
        };
        for engine in engines {
            let table = Table {
                stream,
                dir: &dir,
                layout,
                first_date: first_date.as_deref(),
                location: cfg.location.as_deref(),
            };
            out.push_str(&table.render(engine));
            out.push('\n');
        }
    }
    if streams.is_empty() {
        return Err(Error::message(format!(
            "{}: no archive files",
            cfg.dir.display()
        )));
    }
    print!("{out}");
    Ok(())
}

/// A stream of the directory and its first date (`YYYY-MM-DD`; none in the flat layout).
type Stream = (String, Option<String>);

/// The layout and the streams of an archive directory.
fn streams_of(dir: &Path) -> Result<(Layout, Vec<Stream>), Error> {
    let flat = walk(dir, Layout::Flat).map_err(Error::from_archive)?;
    if flat.iter().any(|f| classify(&f.name).is_some()) {
        return Ok((Layout::Flat, vec![("events".into(), None)]));
    }
    let mut streams = Vec::new();
    for (name, entry) in list_dir(dir).map_err(Error::from_archive)? {
        if name.starts_with(['_', '.']) || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let dates = list_dir(&entry.path()).map_err(Error::from_archive)?;
        let first = dates
            .iter()
            .filter_map(|(d, _)| parse_date_dir(d).map(|_| d["date=".len()..].to_string()))
            .min();
        if first.is_some() {
            streams.push((name, first));
        }
    }
    streams.sort();
    Ok((Layout::Partitioned, streams))
}

/// One stream's table.
struct Table<'a> {
    stream: &'a str,
    dir: &'a Path,
    layout: Layout,
    first_date: Option<&'a str>,
    location: Option<&'a str>,
}

impl Table<'_> {
    fn columns(&self) -> (&'static [(&'static str, Type)], &'static str) {
        match self.stream.ends_with("recentchange") {
            true => (
                RECENTCHANGE,
                "typed as EventStreams' mediawiki/recentchange schema",
            ),
            false => (
                ANY_STREAM,
                "untyped: only the columns every event has ($schema, meta); add the stream's own",
            ),
        }
    }

    /// The SQL identifier of the table.
    fn name(&self) -> String {
        self.stream.replace(['.', '-'], "_")
    }

    fn render(&self, engine: Engine) -> String {
        let (columns, typed) = self.columns();
        let name = self.name();
        let files = match self.layout {
            Layout::Partitioned => {
                format!("{}/{}/date=*/*.ndjson.gz", self.dir.display(), self.stream)
            }
            Layout::Flat => format!("{}/*.ndjson.gz", self.dir.display()),
        };
        match engine {
            Engine::DuckDb => {
                let cols: Vec<String> = columns
                    .iter()
                    .map(|(col, ty)| format!("    {}: '{}'", duck_name(col), duck_type(*ty)))
                    .collect();
                let hive = match self.layout {
                    Layout::Partitioned => ",\n  hive_partitioning = true",
                    Layout::Flat => "",
                };
                format!(
                    "-- DuckDB: {name}, {typed}\nCREATE OR REPLACE VIEW {name} AS SELECT * FROM read_json(\n  \
                     '{files}',\n  format = 'newline_delimited'{hive},\n  columns = {{\n{}\n  }}\n);\n",
                    cols.join(",\n")
                )
            }
            Engine::Spark => {
                let mut cols: Vec<String> = columns
                    .iter()
                    .filter(|(_, ty)| !matches!(ty, Type::Json))
                    .map(|(col, ty)| format!("  `{col}` {}", spark_type(*ty)))
                    .collect();
                let (partitioned, location) = match self.layout {
                    Layout::Partitioned => {
                        cols.push("  `date` DATE".into());
                        (
                            "\nPARTITIONED BY (`date`)",
                            format!("{}/{}", self.dir.display(), self.stream),
                        )
                    }
                    Layout::Flat => ("", self.dir.display().to_string()),
                };
                let repair = match self.layout {
                    Layout::Partitioned => format!("MSCK REPAIR TABLE {name};\n"),
                    Layout::Flat => String::new(),
                };
                format!(
                    "-- Spark SQL: {name}, {typed} (log_params, whose shape varies, left out)\n\
                     CREATE TABLE IF NOT EXISTS {name} (\n{}\n)\nUSING json{partitioned}\n\
                     LOCATION '{location}';\n{repair}",
                    cols.join(",\n")
                )
            }
            Engine::Athena => self.athena(columns, typed),
        }
    }

    fn athena(&self, columns: &[(&str, Type)], typed: &str) -> String {
        let name = self.name();
        let base = self
            .location
            .map(|l| l.trim_end_matches('/').to_string())
            .unwrap_or_else(|| "s3://BUCKET/PREFIX".into());
        let cols: Vec<String> = columns
            .iter()
            .filter(|(col, ty)| !matches!(ty, Type::Json) && !col.starts_with('$'))
            .map(|(col, ty)| format!("  `{col}` {}", hive_type(*ty)))
            .collect();
        let start = self.first_date.unwrap_or("2001-01-01");
        format!(
            "-- Athena / Glue: {name}, {typed} (log_params and $schema left out), over the \
             bucket as --ship-to writes it\nCREATE EXTERNAL TABLE IF NOT EXISTS {name} (\n{}\n)\n\
             PARTITIONED BY (`date` string)\nROW FORMAT SERDE 'org.openx.data.jsonserde.JsonSerDe'\n\
             LOCATION '{base}/{stream}/'\nTBLPROPERTIES (\n  'projection.enabled' = 'true',\n  \
             'projection.date.type' = 'date',\n  'projection.date.format' = 'yyyy-MM-dd',\n  \
             'projection.date.range' = '{start},NOW',\n  'projection.date.interval' = '1',\n  \
             'projection.date.interval.unit' = 'DAYS',\n  \
             'storage.location.template' = '{base}/{stream}/date=${{date}}/'\n);\n",
            cols.join(",\n"),
            stream = self.stream
        )
    }
}

fn duck_name(col: &str) -> String {
    match col.chars().all(|c| c.is_ascii_lowercase() || c == '_')
        && !matches!(
            col,
            "type" | "partition" | "offset" | "user" | "timestamp" | "old" | "new"
        ) {
        true => col.to_string(),
        false => format!("\"{col}\""),
    }
}

/// A struct's fields, each as `field` writes it, comma-separated.
fn each(fields: &[(&str, Type)], field: impl Fn(&str, Type) -> String) -> String {
    let inner: Vec<String> = fields.iter().map(|(f, t)| field(f, *t)).collect();
    inner.join(", ")
}

fn duck_type(ty: Type) -> String {
    match ty {
        Type::Text => "VARCHAR".into(),
        Type::Int => "INTEGER".into(),
        Type::Big => "BIGINT".into(),
        Type::Bool => "BOOLEAN".into(),
        Type::Time => "TIMESTAMPTZ".into(),
        Type::Json => "JSON".into(),
        Type::Struct(fields) => format!(
            "STRUCT({})",
            each(fields, |f, t| format!("{} {}", duck_name(f), duck_type(t)))
        ),
    }
}

fn spark_type(ty: Type) -> String {
    match ty {
        Type::Text | Type::Json => "STRING".into(),
        Type::Int => "INT".into(),
        Type::Big => "BIGINT".into(),
        Type::Bool => "BOOLEAN".into(),
        Type::Time => "TIMESTAMP".into(),
        Type::Struct(fields) => format!(
            "STRUCT<{}>",
            each(fields, |f, t| format!("`{f}`: {}", spark_type(t)))
        ),
    }
}

fn hive_type(ty: Type) -> String {
    match ty {
        // The OpenX SerDe reads RFC 3339 times as strings; from_iso8601_timestamp(meta.dt).
        Type::Time => "string".into(),
        Type::Struct(fields) => format!(
            "struct<{}>",
            each(fields, |f, t| format!("`{f}`: {}", hive_type(t)))
        ),
        other => spark_type(other).to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(stream: &str) -> Table<'static> {
        Table {
            stream: Box::leak(stream.to_string().into_boxed_str()),
            dir: Path::new("/a"),
            layout: Layout::Partitioned,
            first_date: Some("2024-11-23"),
            location: Some("s3://b/p/"),
        }
    }

    #[test]
    fn recentchange_is_typed_and_other_streams_say_they_are_not() {
        let duck = table("recentchange").render(Engine::DuckDb);
        assert!(
            duck.contains("read_json(\n  '/a/recentchange/date=*/*.ndjson.gz'"),
            "{duck}"
        );
        assert!(
            duck.contains(
                "meta: 'STRUCT(uri VARCHAR, request_id VARCHAR, id VARCHAR, dt TIMESTAMPTZ"
            ),
            "{duck}"
        );
        assert!(
            duck.contains("\"type\": 'VARCHAR'") && duck.contains("hive_partitioning = true"),
            "{duck}"
        );
        let spark = table("recentchange").render(Engine::Spark);
        assert!(
            spark.contains("USING json\nPARTITIONED BY (`date`)\nLOCATION '/a/recentchange'"),
            "{spark}"
        );
        assert!(
            spark.contains("`length` STRUCT<`old`: BIGINT, `new`: BIGINT>"),
            "{spark}"
        );
        let athena = table("recentchange").render(Engine::Athena);
        assert!(
            athena.contains("LOCATION 's3://b/p/recentchange/'"),
            "{athena}"
        );
        assert!(
            athena.contains("'projection.date.range' = '2024-11-23,NOW'"),
            "{athena}"
        );
        assert!(
            athena.contains("'storage.location.template' = 's3://b/p/recentchange/date=${date}/'"),
            "{athena}"
        );
        let other = table("mediawiki.page-create").render(Engine::DuckDb);
        assert!(
            other.contains("VIEW mediawiki_page_create") && other.contains("untyped"),
            "{other}"
        );
    }
}
