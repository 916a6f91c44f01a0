//! Runs the game example.

fn main() -> std::process::ExitCode {
    game::app().main()
}
