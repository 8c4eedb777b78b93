//! `hubgate`: argument parsing and wiring live in `cli`; this file only hands over.

fn main() -> std::process::ExitCode {
    hubgate::cli::main()
}
