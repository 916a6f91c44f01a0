//! Runs the echo example: `cargo run -p echo -- --listen 127.0.0.1:8787`.

fn main() -> std::process::ExitCode {
    echo::app().main()
}
