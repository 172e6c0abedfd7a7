//! `ecskube`: clap dispatch only; the work lives in the library.

use clap::Parser;

// Admission handling is allocation-heavy (JSON in, JSON out); glibc's malloc
// was a fifth of the webhook's CPU under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = ecskube::cli::Cli::parse();
    std::process::exit(ecskube::cli::run(cli));
}
