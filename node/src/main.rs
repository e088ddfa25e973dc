//! `taksa`: the Taksa node, its dev chain, its wallet and its bench, in one binary.
//! `main` only parses, builds the runtime, runs the command and reports its error.

use clap::Parser;
use taksa_node::cli::{dispatch, Cli};

fn main() -> std::process::ExitCode {
    // `taksa node --config FILE` becomes flags first, so clap checks every value alike.
    let args = match taksa_node::config::expand_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("error: {e:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = Cli::parse_from(args);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
