//! `cargo xtask <task>`: the project's tasks.
fn main() {
    eprintln!("xtask: no tasks yet");
}
