//! wikistream-archiver as a library: the modules behind the binary in `main.rs`.
//!
//! It exists so that fuzz targets and benchmarks can reach the pure cores (the SSE parser, the
//! checkpoint decoder, the gzip member scanner); it is not a published API and promises no
//! stability.

pub mod archive;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod defaults;
pub mod event;
pub mod filter;
pub mod health;
pub mod httpd;
pub mod human;
pub mod jsonscan;
pub mod labels;
pub mod logging;
pub mod run;
pub mod ship;
pub mod sse;
pub mod stats;
pub mod times;
pub mod tools;

#[cfg(test)]
mod import_rules {
    //! The import rules of ARCHITECTURE.md, checked on the source tree: a module that starts
    //! to import what it must not fails here, not in review. Every `crate::` path outside test
    //! code counts, grouped imports (`use crate::{a, b}`) and paths in code included.

    use std::path::{Path, PathBuf};

    /// The pure core: no I/O, no clock; it imports only itself.
    const CORE: &[&str] = &[
        "sse", "event", "jsonscan", "filter", "times", "labels", "human",
    ];

    /// What each top-level module may import besides itself and the pure core.
    const RULES: &[(&str, &[&str])] = &[
        ("sse", &[]),
        ("event", &[]),
        ("jsonscan", &[]),
        ("filter", &[]),
        ("times", &[]),
        ("labels", &[]),
        ("human", &[]),
        // A leaf of constants that `cli`, `config` and the tools read.
        ("defaults", &[]),
        ("logging", &[]),
        ("httpd", &[]),
        ("client", &[]),
        // Observers: never `archive`, `run`, `cli` or `config`.
        ("stats", &[]),
        ("console", &["stats"]),
        ("health", &["stats", "httpd", "client", "logging"]),
        // The archive: never `client`, `run` or `cli`.
        ("archive", &["stats"]),
        (
            "run",
            &[
                "archive", "client", "console", "health", "stats", "logging", "ship",
            ],
        ),
        // Shipping: the archive's files, observed by the stats; never `run` or `client`.
        ("ship", &["archive", "stats", "logging"]),
        // Tools never import `run`.
        (
            "tools",
            &[
                "archive", "console", "httpd", "stats", "defaults", "logging", "ship",
            ],
        ),
        // Only `main.rs` and `config` import `cli`, which reads only the defaults.
        ("cli", &["defaults"]),
        (
            "config",
            &[
                "archive", "cli", "client", "console", "defaults", "health", "run", "ship", "tools",
            ],
        ),
    ];

    /// Every `.rs` file below `dir`.
    fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("reading src") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                rust_files(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// `code` without the items marked `#[cfg(test)]` (a module, a function, a `use`): each
    /// runs to its `;` or to the brace that closes its first `{`.
    fn without_tests(code: &str) -> String {
        let mut out = String::new();
        let mut rest = code;
        while let Some(start) = rest.find("#[cfg(test)]") {
            out.push_str(&rest[..start]);
            let item = &rest[start..];
            let open = item.find('{');
            let semicolon = item.find(';');
            let end = match (open, semicolon) {
                (Some(open), Some(semi)) if semi < open => semi + 1,
                (Some(open), _) => open + block_len(&item[open..]),
                (None, Some(semi)) => semi + 1,
                (None, None) => item.len(),
            };
            rest = &item[end..];
        }
        out.push_str(rest);
        out
    }

    /// The length of the block `code` starts with (at its `{`), to its closing brace; braces in
    /// string and character literals do not count.
    fn block_len(code: &str) -> usize {
        let bytes = code.as_bytes();
        let (mut depth, mut idx) = (0i32, 0);
        while idx < bytes.len() {
            match bytes[idx] {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return idx + 1;
                    }
                }
                b'\'' if bytes.get(idx + 2) == Some(&b'\'') => idx += 2,
                b'\'' if bytes.get(idx + 1) == Some(&b'\\') => {
                    idx += code[idx + 2..].find('\'').map_or(0, |n| n + 2);
                }
                b'"' => {
                    // A raw string's hashes, if any, close it too.
                    let hashes = code[..idx].len() - code[..idx].trim_end_matches('#').len();
                    let raw = code[..idx - hashes].ends_with('r');
                    let close = format!("\"{}", "#".repeat(hashes));
                    let mut end = idx + 1;
                    loop {
                        let found = code[end..].find(&close).expect("a string literal closes");
                        end += found;
                        let backslashes =
                            code[..end].len() - code[..end].trim_end_matches('\\').len();
                        let escaped = !raw && backslashes % 2 == 1;
                        if !escaped {
                            break;
                        }
                        end += 1;
                    }
                    idx = end + close.len() - 1;
                }
                _ => {}
            }
            idx += 1;
        }
        panic!("a test item's braces close")
    }

    /// The top-level module names a `crate::` path names, grouped ones included.
    fn named_modules(code: &str) -> Vec<String> {
        let ident = |text: &str| -> String {
            text.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let mut names = Vec::new();
        for piece in code.split("crate::").skip(1) {
            match piece.strip_prefix('{') {
                Some(group) => {
                    // Top-level items of the group: split at commas outside nested braces.
                    let mut depth = 0;
                    let mut item_start = 0;
                    for (idx, c) in group.char_indices() {
                        match c {
                            '{' => depth += 1,
                            '}' if depth == 0 => {
                                names.push(ident(&group[item_start..idx]));
                                break;
                            }
                            '}' => depth -= 1,
                            ',' if depth == 0 => {
                                names.push(ident(&group[item_start..idx]));
                                item_start = idx + 1;
                            }
                            _ => {}
                        }
                    }
                }
                None => names.push(ident(piece)),
            }
        }
        names.retain(|name| !name.is_empty());
        names
    }

    /// `(file, module named)` for every `crate::` path in the code of `module` (a file or a
    /// folder under the library's root), outside its tests.
    fn imports_of(module: &str) -> Vec<(String, String)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        let folder = root.join(module);
        if folder.is_dir() {
            rust_files(&folder, &mut files);
        }
        let file = root.join(format!("{module}.rs"));
        if file.exists() {
            files.push(file);
        }
        assert!(!files.is_empty(), "{module}: no source");
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("reading a source file");
            for name in named_modules(&without_tests(&text)) {
                found.push((file.display().to_string(), name));
            }
        }
        found
    }

    #[test]
    fn every_module_keeps_its_import_rules() {
        let declared: Vec<&str> = include_str!("lib.rs")
            .lines()
            .filter_map(|line| line.strip_prefix("pub mod "))
            .map(|line| line.trim_end_matches(';'))
            .collect();
        for module in &declared {
            let rule = RULES.iter().find(|(name, _)| name == module);
            let (_, allowed) = rule.unwrap_or_else(|| panic!("{module} has no import rule"));
            // Everything may use the pure core, but the leaf of constants.
            let core_allowed = *module != "defaults";
            for (file, name) in imports_of(module) {
                let ok = name == *module
                    || allowed.contains(&name.as_str())
                    || core_allowed && CORE.contains(&name.as_str());
                assert!(
                    ok && declared.contains(&name.as_str()),
                    "{file} imports crate::{name}, which the import rules forbid for {module}"
                );
            }
        }
        assert_eq!(declared.len(), RULES.len(), "a rule names no module");
    }

    #[test]
    fn the_scan_sees_grouped_imports_and_skips_test_code() {
        let code = "use crate::{archive::{self, x}, run};\nfn f() { crate::times::now(); }\n\
                    #[cfg(test)]\nfn g() { crate::cli::x(); }\n#[cfg(test)]\nmod tests { \
                    use crate::config; fn h() { if true { crate::tools::y() } } }\n\
                    fn k() { crate::health::z() }";
        let names = named_modules(&without_tests(code));
        assert_eq!(names, ["archive", "run", "times", "health"]);
    }
}
