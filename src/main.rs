//! Command line of the portal: parse the arguments, hand over to the library.

use std::process::ExitCode;

/// mimalloc rather than glibc's malloc: cheaper small allocations, which the pages make by the
/// hundred (see `bench/README.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    match nanoclip::cli::parse() {
        Ok(cli) => nanoclip::run(cli),
        Err(code) => code,
    }
}
