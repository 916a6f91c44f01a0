//! Runs the presence example.

fn main() -> std::process::ExitCode {
    presence::app().main()
}
