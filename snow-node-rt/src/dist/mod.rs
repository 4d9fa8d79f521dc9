//! Distribution driver (DESIGN.md 3.2, 4.2, 4.5): the async side that moves bytes and time
//! between sockets and the sans-IO protocol values in [`snow_shared::dist`].
//!
//! So far: start-up settings from the environment ([`config`]).

pub mod config;

pub use config::{ConfigError, DistConfig, TlsSource};
