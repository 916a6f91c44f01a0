//! Runs the chat room: `cargo run --release -p chat-room`, then open http://127.0.0.1:8787/.

fn main() -> std::process::ExitCode {
    chat_room::app().main()
}
