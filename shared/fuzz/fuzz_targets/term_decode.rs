//! Fuzz the term decoder: never panics, and whatever decodes round-trips.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_term(data));
