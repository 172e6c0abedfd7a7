//! `ecskube`: clap dispatch only; the work lives in the library.

use clap::Parser;

fn main() {
    let cli = ecskube::cli::Cli::parse();
    std::process::exit(ecskube::cli::run(cli));
}
