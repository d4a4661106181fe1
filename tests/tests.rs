//! The one integration-test binary: every test spawns the real `wikistream-archiver` binary
//! against a real server on 127.0.0.1 (its own `serve`, or an in-test server for raw bytes).

mod util;

mod archive;
mod cli;
mod durability;
mod fixture_server;
mod hardening;
mod health;
mod layout;
mod parse;
mod promises;
mod ship;
mod tls;
mod tools;
mod untrusted;
