//! `snow-epmd`: parses the command line and hands it to the library (see `snow_epmd::cli`).
#![forbid(unsafe_code)]

use clap::Parser;

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = snow_epmd::cli::Cli::parse();
    std::process::exit(snow_epmd::cli::run(cli));
}
