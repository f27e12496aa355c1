//! `raygate schema`: write the JSON Schemas generated from the Rust model.

use std::path::PathBuf;
use std::process::ExitCode;

/// Write the JSON Schemas of all four kinds (`raycluster.v1.json`, `rayjob.v1.json`, …),
/// generated from the Rust types.
#[derive(clap::Args, Debug, Clone)]
pub struct SchemaArgs {
    /// Directory to write the schemas into.
    #[arg(long, default_value = "schemas")]
    pub out: PathBuf,
    /// Print one schema (`v1`/`v1alpha1` for RayCluster, or e.g. `rayjob.v1`) to stdout instead
    /// of writing files.
    #[arg(long, value_name = "VERSION")]
    pub print: Option<String>,
}

pub fn run(args: SchemaArgs) -> ExitCode {
    let all = crate::schema::generate_all();
    if let Some(v) = &args.print {
        // `v1` / `v1alpha1` (RayCluster) or `<kind>.<version>`, e.g. `rayjob.v1`.
        let want = if v.contains('.') {
            format!("{v}.json")
        } else {
            format!("raycluster.{v}.json")
        };
        return match all.iter().find(|(n, _)| *n == want) {
            Some((_, s)) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!(
                    "error: unknown schema version {v:?} (v1, v1alpha1, or <kind>.<version> such as rayjob.v1)"
                );
                ExitCode::from(2)
            }
        };
    }
    if let Err(e) = std::fs::create_dir_all(&args.out) {
        eprintln!("error: cannot create {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    for (name, s) in all {
        let p = args.out.join(name);
        if let Err(e) = std::fs::write(&p, s) {
            eprintln!("error: cannot write {}: {e}", p.display());
            return ExitCode::from(2);
        }
        println!("wrote {}", p.display());
    }
    ExitCode::SUCCESS
}
