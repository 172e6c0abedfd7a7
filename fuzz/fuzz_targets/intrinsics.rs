#![no_main]
//! `cargo +nightly fuzz run intrinsics`: see ecskube_fuzz::intrinsics for the properties checked.

libfuzzer_sys::fuzz_target!(|data: &[u8]| ecskube_fuzz::intrinsics::check(data));
