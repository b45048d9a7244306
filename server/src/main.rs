//! havipd's entry point; the work is in the library so test harnesses can run the same
//! daemon.

fn main() -> std::process::ExitCode {
    havipd::main()
}
