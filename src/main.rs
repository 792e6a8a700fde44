//! Command line of the portal: parse the arguments, hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = nanoclip::cli::Cli::parse();
    nanoclip::run(cli)
}
