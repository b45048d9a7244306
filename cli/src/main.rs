//! The `havipctl` binary; everything lives in the library so that it can be unit-tested.

fn main() -> std::process::ExitCode {
    havipctl::main()
}
