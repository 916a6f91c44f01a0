//! Runs the counter: `cargo run -p counter`, then `curl -X POST localhost:8787/counter/a`.

fn main() -> std::process::ExitCode {
    counter::app().main()
}
