//! The rule documentation of `docs/rules/<ID>.md`, embedded at build time (build.rs): what
//! `raygate explain RULE` prints and where findings' `help:` lines and SARIF rule descriptions
//! come from. Pure data.

include!(concat!(env!("OUT_DIR"), "/rule_docs.rs"));

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
