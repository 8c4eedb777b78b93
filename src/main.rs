//! `hubgate`: argument parsing and wiring live in `cli`; this file only hands over.

/// mimalloc instead of glibc's allocator: the proxy allocates and frees many small buffers per
/// request, where glibc's malloc showed up at about a tenth of the profile (see bench/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    hubgate::cli::main()
}
