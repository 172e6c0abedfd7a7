#![no_main]
//! `cargo +nightly fuzz run admission`: see ecskube_fuzz::admission for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecskube_fuzz::admission::check(data));
