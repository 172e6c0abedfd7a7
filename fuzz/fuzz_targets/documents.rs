#![no_main]
//! `cargo +nightly fuzz run documents`: see ecskube_fuzz::documents for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecskube_fuzz::documents::check(data));
