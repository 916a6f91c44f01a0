//! The benchmark driver: `scripts/bench` builds everything and runs this.

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match dormouse_bench::driver::run(dormouse_bench::driver::Options::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("dormouse-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
