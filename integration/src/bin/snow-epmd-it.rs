//! snow-epmd, built as a binary of the integration crate so that tests find it through
//! `CARGO_BIN_EXE_snow-epmd-it` (Cargo only exposes binaries of the crate under test). Identical
//! to snow-epmd's own `main.rs`: it parses the command line and hands it to the library.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = snow_epmd::cli::Cli::parse();
    std::process::exit(snow_epmd::cli::run(cli));
}
