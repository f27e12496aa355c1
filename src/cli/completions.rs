//! `raygate completions SHELL` and `raygate man`: shell completion scripts (clap_complete) and
//! roff man pages (clap_mangen), both generated from the same clap definition as `--help`, so
//! they cannot drift from the flags the binary accepts.

use clap::Command;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a completion script for SHELL on stdout.
///
/// bash: `raygate completions bash > ~/.local/share/bash-completion/completions/raygate`;
/// zsh: `raygate completions zsh > "${fpath[1]}/_raygate"`;
/// fish: `raygate completions fish > ~/.config/fish/completions/raygate.fish`.
#[derive(clap::Args, Debug, Clone)]
pub struct CompletionsArgs {
    /// Shell to generate the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print the raygate(1) man page (roff) on stdout, or write every page into a directory.
///
/// `raygate man | man -l -` reads it; `raygate man --out-dir DIR` writes raygate.1 and one page
/// per subcommand (raygate-validate.1, raygate-autoscale-plan.1, ...).
#[derive(clap::Args, Debug, Clone)]
pub struct ManArgs {
    /// Write raygate.1 and a page per subcommand into DIR (created if missing) instead of
    /// printing raygate.1.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
}

/// The completion script for `shell` of `cmd` (named `raygate`).
pub fn completion_script(shell: clap_complete::Shell, cmd: &mut Command) -> Vec<u8> {
    let mut buf = Vec::new();
    // writing into a Vec cannot fail (clap_complete panics on a failed write, so never give it
    // stdout directly: a closed pipe must not panic)
    clap_complete::generate(shell, cmd, "raygate", &mut buf);
    buf
}

/// Writes `bytes` to stdout. A reader that went away (`| head`) ends the command quietly.
fn emit(bytes: &[u8], what: &str) -> ExitCode {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write {what}: {e}");
            ExitCode::from(2)
        }
    }
}

pub fn completions(args: CompletionsArgs, mut cmd: Command) -> ExitCode {
    emit(
        &completion_script(args.shell, &mut cmd),
        "the completion script",
    )
}

pub fn man(args: ManArgs, cmd: Command) -> ExitCode {
    let cmd = cmd.name("raygate").bin_name("raygate");
    match &args.out_dir {
        Some(dir) => {
            match std::fs::create_dir_all(dir).and_then(|()| clap_mangen::generate_to(cmd, dir)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: cannot write man pages into {}: {e}", dir.display());
                    ExitCode::from(2)
                }
            }
        }
        None => {
            let mut buf = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut buf) {
                eprintln!("error: cannot render the man page: {e}");
                return ExitCode::from(2);
            }
            emit(&buf, "the man page")
        }
    }
}
