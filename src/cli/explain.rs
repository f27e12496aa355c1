//! `raygate explain RULE`: what a rule id means and how to fix it, from `docs/rules/<ID>.md`
//! (embedded at build time).

use std::process::ExitCode;

include!(concat!(env!("OUT_DIR"), "/rule_docs.rs"));

/// Print what a rule id means and how to fix it (`raygate explain W5`; `--list` for all ids).
#[derive(clap::Args, Debug, Clone)]
pub struct ExplainArgs {
    /// Rule id as printed in findings (`W5`, `CRD-ENUM`, `RG-QUANTITY`); case-insensitive.
    #[arg(required_unless_present = "list")]
    pub rule: Option<String>,
    /// List every rule id with its title.
    #[arg(long)]
    pub list: bool,
}

/// The documentation of `rule` (case-insensitive), if there is one.
pub fn doc(rule: &str) -> Option<&'static str> {
    RULE_DOCS
        .iter()
        .find(|(id, _)| id.eq_ignore_ascii_case(rule))
        .map(|(_, d)| *d)
}

/// The first line of a rule's doc without `# `: `W5: minReplicas greater than maxReplicas`.
pub fn title(rule: &str) -> Option<&'static str> {
    let d = doc(rule)?;
    let first = d.lines().next()?;
    let t = first.strip_prefix("# ").unwrap_or(first);
    Some(t.split_once(": ").map_or(t, |(_, rest)| rest))
}

/// The `Fix:` paragraph of a rule's doc.
pub fn fix(rule: &str) -> Option<&'static str> {
    doc(rule)?.lines().find_map(|l| l.strip_prefix("Fix: "))
}

/// Every documented rule id.
pub fn ids() -> impl Iterator<Item = &'static str> {
    RULE_DOCS.iter().map(|(id, _)| *id)
}

pub fn run(args: ExplainArgs) -> ExitCode {
    if args.list {
        for id in ids() {
            println!("{id:<26} {}", title(id).unwrap_or(""));
        }
        return ExitCode::SUCCESS;
    }
    let rule = args.rule.unwrap_or_default();
    match doc(&rule) {
        Some(d) => {
            print!("{d}");
            ExitCode::SUCCESS
        }
        None => {
            let near: Vec<&str> = ids()
                .filter(|id| {
                    let (a, b) = (id.to_ascii_uppercase(), rule.to_ascii_uppercase());
                    a.starts_with(&b) || b.starts_with(&a)
                })
                .take(8)
                .collect();
            eprintln!("error: no rule {rule:?}; `raygate explain --list` shows every rule id");
            if !near.is_empty() {
                eprintln!("  similar: {}", near.join(", "));
            }
            ExitCode::from(2)
        }
    }
}
