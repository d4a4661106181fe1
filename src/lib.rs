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
pub mod event;
pub mod filter;
pub mod health;
pub mod httpd;
pub mod human;
pub mod jsonscan;
pub mod labels;
pub mod logging;
pub mod run;
pub mod sse;
pub mod stats;
pub mod times;
pub mod tools;

#[cfg(test)]
mod import_rules {
    //! The import rules of ARCHITECTURE.md, checked on the source tree: a module that starts
    //! to import what it must not fails here, not in review.

    use std::path::{Path, PathBuf};

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

    /// The top-level modules of ours that the code of `module` (a file or folder under src)
    /// names, outside its tests.
    fn imports_of(module: &str) -> Vec<(String, String)> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf();
        let mut files = Vec::new();
        let folder = src.join(module);
        if folder.is_dir() {
            rust_files(&folder, &mut files);
        } else {
            files.push(src.join(format!("{module}.rs")));
        }
        assert!(
            files.iter().all(|f| f.exists()) && !files.is_empty(),
            "{module}: no source"
        );
        let mut found = Vec::new();
        for file in files {
            let text = std::fs::read_to_string(&file).expect("reading a source file");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            for piece in code.split("crate::").skip(1) {
                let name: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                found.push((file.display().to_string(), name));
            }
        }
        assert!(
            found.iter().all(|(_, name)| !name.is_empty()),
            "the scan is broken"
        );
        found
    }

    fn check(module: &str, allowed: &[&str]) {
        for (file, name) in imports_of(module) {
            assert!(
                name == module || allowed.contains(&name.as_str()),
                "{file} imports crate::{name}, which the import rules forbid for {module}"
            );
        }
    }

    #[test]
    fn the_pure_core_imports_only_itself() {
        let core = [
            "sse", "event", "jsonscan", "filter", "times", "labels", "human",
        ];
        for module in core {
            check(module, &core);
        }
    }

    #[test]
    fn observers_stay_out_of_archive_run_cli_and_config() {
        let allowed = [
            "sse", "event", "filter", "times", "labels", "stats", "client", "httpd", "human",
        ];
        for module in ["health", "stats", "console"] {
            check(module, &allowed);
        }
    }

    #[test]
    fn archive_and_tools_keep_their_distance() {
        let core = [
            "sse", "event", "filter", "times", "labels", "stats", "human",
        ];
        check("archive", &core);
        let mut tools = core.to_vec();
        tools.extend(["archive", "console", "tools", "config", "httpd"]);
        check("tools", &tools);
        for module in [
            "archive", "tools", "run", "client", "health", "stats", "console",
        ] {
            for (file, name) in imports_of(module) {
                assert_ne!(name, "cli", "{file}: only main.rs and config import cli");
            }
        }
    }
}
