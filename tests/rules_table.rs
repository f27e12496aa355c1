//! Every rule id: one object that triggers it (exact rule, field path, message and severity) and
//! a close variant that does not. The table is `tests/support/rule_cases.rs`.

mod common;
#[path = "support/rule_cases.rs"]
mod rule_cases;

use common::base;
use raygate::rules::{RULE_IDS, validate};
use raygate::violation::{FeatureGates, ValidateOptions};
use rule_cases::{ALL_GATES, cases};
use std::collections::BTreeSet;

fn opts(gates: &str) -> ValidateOptions {
    ValidateOptions {
        gates: FeatureGates::parse(gates).unwrap(),
        ..Default::default()
    }
}

#[test]
fn base_object_is_clean_under_every_gate_set() {
    for g in ["", ALL_GATES, "RayJobDeletionPolicy=false"] {
        let v = validate(&base(), None, &opts(g));
        assert!(v.is_empty(), "gates {g:?}: {v:?}");
    }
}

#[test]
fn every_rule_triggers_exactly_and_has_a_passing_neighbour() {
    let mut covered = BTreeSet::new();
    let mut failures = Vec::new();
    for c in cases() {
        let o = opts(c.gates);
        let bad = validate(&c.bad, c.old.as_ref(), &o);
        if !c.msg.is_empty() {
            covered.insert(c.id);
            let hit = bad.iter().find(|v| v.rule == c.id);
            match hit {
                None => failures.push(format!("{}: not triggered; got {bad:?}", c.id)),
                Some(v) => {
                    if v.path != c.path || v.message != c.msg || v.severity != c.severity {
                        failures.push(format!(
                            "{}: expected ({}, {:?}, {:?}) got ({}, {:?}, {:?})",
                            c.id, c.path, c.msg, c.severity, v.path, v.message, v.severity
                        ));
                    }
                }
            }
        }
        let good = validate(&c.good, c.old.as_ref(), &o);
        if let Some(v) = good.iter().find(|v| v.rule == c.id) {
            failures.push(format!("{}: fired on the passing variant: {v:?}", c.id));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let missing: Vec<_> = RULE_IDS
        .iter()
        .filter(|id| !covered.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "rule ids without a triggering test: {missing:?}"
    );
}
