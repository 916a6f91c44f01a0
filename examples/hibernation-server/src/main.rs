//! Runs the hibernation-server example.

fn main() -> std::process::ExitCode {
    hibernation_server::app().main()
}
