//! `raygate default [PATH|-]...`: print RayClusters with the defaults the mutating webhook
//! would store (CRD defaults plus autoscaler defaults); other documents pass through unchanged.

use crate::pipeline::{self, Defaulted, Event};
use std::io::Write;
use std::process::ExitCode;

/// Print the defaulted objects as YAML (multi-document, `---` separated). Comments are not kept.
///
/// Exit status: 0 success, 2 unreadable input or usage error.
#[derive(clap::Args, Debug, Clone)]
pub struct DefaultArgs {
    /// Files, directories (walked recursively) or `-` for stdin. Default: stdin when it is piped.
    pub paths: Vec<String>,
    /// Worker threads (default: available cores).
    #[arg(short = 'j', long)]
    pub jobs: Option<usize>,
}

pub fn run(args: DefaultArgs) -> ExitCode {
    let paths = match super::validate::input_args(&args.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let inputs = pipeline::expand_args(&paths);
    let jobs = args.jobs.unwrap_or_else(super::validate::default_jobs);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut failed = false;
    let mut first = true;
    let mut file = String::new();
    pipeline::run(inputs, jobs, pipeline::default_chunk, |ev| match ev {
        Event::Start(name) => file = name,
        Event::Item(docs) => {
            for d in docs {
                match d {
                    Defaulted::Yaml(y) => {
                        if !first {
                            let _ = out.write_all(b"---\n");
                        }
                        first = false;
                        let _ = out.write_all(y.as_bytes());
                    }
                    Defaulted::Note(n) => eprintln!("note: {file}: {n}"),
                    Defaulted::Error(f) => {
                        failed = true;
                        eprintln!(
                            "error[{}]: {}\n  --> {file}:{}:{}",
                            f.rule, f.message, f.line, f.column
                        );
                    }
                }
            }
        }
        Event::ReadError(e) => {
            failed = true;
            if e.line > 0 {
                eprintln!("error: {}\n  --> {file}:{}:{}", e.message, e.line, e.col);
            } else {
                eprintln!("error: {file}: {}", e.message);
            }
        }
        Event::End => {}
    });
    let _ = out.flush();
    if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}
