//! The load generator: one scenario per run, driven by `dormouse-bench`.

use clap::Parser;
use dormouse_bench::load::{self, Scenario};

#[derive(Debug, Parser)]
#[command(about = "Load generator for the Dormouse benchmarks (run by dormouse-bench)")]
struct Cli {
    #[command(subcommand)]
    scenario: Scenario,
}

fn main() -> std::process::ExitCode {
    match load::run(Cli::parse().scenario) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dormouse-load: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
