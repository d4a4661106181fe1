//! wikistream-archiver as a library: the modules behind the binary in `main.rs`.
//!
//! It exists so that fuzz targets and benchmarks can reach the pure cores (the SSE parser, the
//! checkpoint decoder, the gzip member scanner); it is not a published API and promises no
//! stability.

pub mod archive;
pub mod cli;
pub mod client;
pub mod console;
pub mod event;
pub mod filter;
pub mod health;
pub mod run;
pub mod sse;
pub mod stats;
pub mod tools;
