//! Runs the client-registry example.

fn main() -> std::process::ExitCode {
    client_registry::app().main()
}
