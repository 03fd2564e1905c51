//! The `sld` command-line tool: parse, dispatch to one command in
//! [`cli`], print the error, set the exit code (1 on error, 130 when
//! stopped by Ctrl-C).

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    restore_sigpipe();
    let args = cli::Cli::parse();
    match cli::run(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<cli::Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Gives SIGPIPE back its default action (Rust ignores it, so a write to a
/// closed pipe, as in `sld model forward --profile | head`, would be an
/// error that `println!` turns into a panic): the tool then ends quietly
/// like any Unix filter.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in `main`, before any other thread
    // exists; SIG_DFL is a valid disposition for SIGPIPE.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::cli::Cli;

    /// Every subcommand parses its defaults: a value parser whose type
    /// differs from its field's would panic here, not in a user's hands.
    #[test]
    fn every_subcommand_parses_its_defaults() {
        Cli::command().debug_assert();
        let cases: &[&[&str]] = &[
            &["pnp", "--input", "p.json", "--output", "r.json"],
            &["demo"],
            &["simulate"],
            &["train", "--scene", "s", "--out", "o"],
            &["train", "full", "--scene", "s", "--out", "o"],
            &["train", "head", "--scene", "s", "--out", "o", "--backbone", "b"],
            &["train", "backbone", "--scene", "s", "--out", "o"],
            &["eval", "--model", "m", "--scene", "s"],
            &["plot", "m.jsonl", "--out", "p.png"],
            &["colmap", "import", "--model", "m", "--images", "i", "--out", "o"],
            &["depth", "fill", "--mde", "a", "--depth", "b", "--out", "c"],
            &["depth", "eval", "--mde", "a", "--depth", "b"],
            &["depth", "simulate", "--scene", "s", "--out", "o"],
            &["depth", "labels", "--scene", "s"],
            &["localize", "--model", "m", "i.png"],
            &["model", "info", "m"],
            &["model", "forward", "m", "--input", "i", "--output", "o"],
            &["model", "beacons", "--out", "o"],
            &["model", "random", "--out", "o"],
            &["synth", "--out", "o"],
            &["landmarks", "--scene", "s"],
        ];
        let failed: Vec<String> = cases
            .iter()
            .filter_map(|args| {
                let argv = std::iter::once("sld").chain(args.iter().copied());
                Cli::try_parse_from(argv)
                    .err()
                    .map(|e| format!("sld {}: {e}", args.join(" ")))
            })
            .collect();
        assert!(failed.is_empty(), "{}", failed.join("\n"));
    }
}
