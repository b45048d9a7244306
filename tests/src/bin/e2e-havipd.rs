//! havipd, built for the end-to-end tests.

fn main() -> std::process::ExitCode {
    havipd::main()
}
