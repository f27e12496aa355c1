use super::*;
use crate::rules::RULE_IDS;

fn gate_sets() -> Vec<FeatureGates> {
    let all_on = FeatureGates::parse(
        &crate::violation::KUBERAY_GATES
            .iter()
            .map(|(n, _)| format!("{n}=true"))
            .collect::<Vec<_>>()
            .join(","),
    )
    .unwrap();
    let all_off = FeatureGates::parse(
        &crate::violation::KUBERAY_GATES
            .iter()
            .map(|(n, _)| format!("{n}=false"))
            .collect::<Vec<_>>()
            .join(","),
    )
    .unwrap();
    vec![FeatureGates::default(), all_on, all_off]
}

#[test]
fn every_rule_is_exported_or_explained_exactly_once() {
    for g in gate_sets() {
        let exported: Vec<&str> = checks(&g).iter().map(|c| c.id).collect();
        let explained: Vec<&str> = not_exported(&g).iter().map(|n| n.rule).collect();
        for id in RULE_IDS {
            let n = exported.iter().filter(|x| *x == id).count()
                + explained.iter().filter(|x| *x == id).count();
            assert_eq!(
                n, 1,
                "{id}: exported {exported:?} / explained {explained:?}"
            );
        }
        for id in exported.iter().chain(&explained) {
            assert!(RULE_IDS.contains(id), "{id} is not a rule id");
        }
        for n in not_exported(&g) {
            assert!(
                !n.reason.is_empty() && n.reason != "not exported",
                "{}: no reason",
                n.rule
            );
        }
    }
}

#[test]
fn checks_follow_rule_order() {
    for g in gate_sets() {
        let pos: Vec<usize> = checks(&g)
            .iter()
            .map(|c| RULE_IDS.iter().position(|x| *x == c.id).unwrap())
            .collect();
        assert!(pos.windows(2).all(|w| w[0] < w[1]), "{pos:?}");
    }
}

#[test]
fn gates_switch_rules() {
    let off = FeatureGates::default();
    let on = FeatureGates::parse("RayClusterMTLS=true,RayClusterNetworkPolicy=true").unwrap();
    let ids = |g: &FeatureGates| checks(g).iter().map(|c| c.id).collect::<Vec<_>>();
    assert!(ids(&off).contains(&"T1") && !ids(&off).contains(&"T2"));
    assert!(!ids(&on).contains(&"T1") && ids(&on).contains(&"T2") && ids(&on).contains(&"NP4"));
    let why = not_exported(&off);
    let t2 = why.iter().find(|n| n.rule == "T2").unwrap();
    assert!(t2.reason.contains("RayClusterMTLS=false"), "{}", t2.reason);
}

#[test]
fn cel_is_balanced_and_messages_are_kuberays() {
    for g in gate_sets() {
        let p = validating_policy(&ExportOptions {
            gates: g,
            ..Default::default()
        });
        let mut exprs: Vec<String> = Vec::new();
        for v in p["spec"]["variables"].as_array().unwrap() {
            exprs.push(v["expression"].as_str().unwrap().into());
        }
        for v in p["spec"]["validations"].as_array().unwrap() {
            exprs.push(v["expression"].as_str().unwrap().into());
            if let Some(m) = v["messageExpression"].as_str() {
                exprs.push(m.into());
            }
            assert_eq!(v["reason"], "Invalid");
        }
        for e in &exprs {
            balanced(e);
        }
    }
    // Static messages are KubeRay's texts.
    let cs = checks(&FeatureGates::default());
    let m2 = cs.iter().find(|c| c.id == "M2").unwrap();
    assert!(m2.message.starts_with(
        "RayCluster name should be a valid DNS1035 label: [a DNS-1035 label must consist"
    ));
    assert!(m2.message_expression.is_none());
    let w5 = cs.iter().find(|c| c.id == "W5").unwrap();
    assert_eq!(w5.expression, "variables.w5 == ''");
    assert_eq!(w5.message_expression.as_deref(), Some("variables.w5"));
}

/// Parentheses, brackets and braces balance outside string literals, and literals close.
fn balanced(e: &str) {
    let mut stack = Vec::new();
    let mut chars = e.chars();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => loop {
                match chars.next() {
                    Some('\\') => {
                        chars.next();
                    }
                    Some(x) if x == c => break,
                    Some(_) => {}
                    None => panic!("unterminated string in {e}"),
                }
            },
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = stack
                    .pop()
                    .unwrap_or_else(|| panic!("unbalanced {c} in {e}"));
                let want = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                assert_eq!(open, want, "mismatched {c} in {e}");
            }
            _ => {}
        }
    }
    assert!(stack.is_empty(), "unclosed {stack:?} in {e}");
}

#[test]
fn export_is_deterministic_and_applies_options() {
    let opts = ExportOptions {
        actions: parse_actions("Warn,Audit").unwrap(),
        namespace_selector: Some(
            parse_label_selector("team=ml,env in (prod, dev),!legacy").unwrap(),
        ),
        name_prefix: "acme-".into(),
        mutating: true,
        ..Default::default()
    };
    let a = to_yaml(&export(&opts));
    let b = to_yaml(&export(&opts));
    assert_eq!(a, b);
    let objs = export(&opts);
    let kinds: Vec<&str> = objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    let mut want = [
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ]
    .repeat(4);
    want.extend(["MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"]);
    assert_eq!(kinds, want);
    let names: Vec<&str> = objs
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "acme-raycluster",
            "acme-raycluster",
            "acme-rayjob",
            "acme-rayjob",
            "acme-rayservice",
            "acme-rayservice",
            "acme-raycronjob",
            "acme-raycronjob",
            "acme-raycluster-defaults",
            "acme-raycluster-defaults"
        ]
    );
    assert_eq!(
        objs[2]["spec"]["matchConstraints"]["resourceRules"][0]["resources"],
        json!(["rayjobs"])
    );
    assert_eq!(objs[0]["metadata"]["name"], "acme-raycluster");
    assert_eq!(objs[1]["spec"]["policyName"], "acme-raycluster");
    assert_eq!(
        objs[1]["spec"]["validationActions"],
        json!(["Warn", "Audit"])
    );
    assert_eq!(
        objs[1]["spec"]["matchResources"]["namespaceSelector"],
        json!({
            "matchLabels": {"team": "ml"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        })
    );
    assert_eq!(objs[9]["spec"]["policyName"], "acme-raycluster-defaults");
    // Read back: the YAML is what was exported.
    let back: Vec<Value> = crate::yaml::parse_all(&a)
        .unwrap()
        .into_iter()
        .map(|d| d.value)
        .filter(|v| !v.is_null())
        .collect();
    assert_eq!(back, objs);
    assert!(!to_yaml(&export(&ExportOptions::default())).contains("MutatingAdmissionPolicy"));
}

#[test]
fn bad_options_are_refused_with_a_reason() {
    assert!(
        parse_actions("Deny,Warn")
            .unwrap_err()
            .contains("cannot be combined")
    );
    assert!(
        parse_actions("deny")
            .unwrap_err()
            .contains("unknown validation action")
    );
    assert!(parse_actions("").is_err());
    assert_eq!(parse_actions("Audit,Deny").unwrap(), ["Deny", "Audit"]);
    assert!(
        parse_label_selector("a in b")
            .unwrap_err()
            .contains("parentheses")
    );
    assert!(
        parse_label_selector("-bad=x")
            .unwrap_err()
            .contains("invalid label key")
    );
    assert!(parse_label_selector("(a").is_err());
    assert!(parse_label_selector("").is_err());
    assert_eq!(
        parse_label_selector("a!=b").unwrap(),
        json!({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": ["b"]}]})
    );
}

#[test]
fn mutation_adds_only_absent_fields() {
    let m = mutating_policy(&ExportOptions::default());
    let e = m["spec"]["mutations"][0]["jsonPatch"]["expression"]
        .as_str()
        .unwrap();
    balanced(e);
    for f in [
        "imagePullPolicy",
        "resources",
        "upscalingMode",
        "idleTimeoutSeconds",
    ] {
        assert!(
            e.contains(&format!("!object.spec.?autoscalerOptions.?{f}.hasValue()")),
            "{f} is added only when absent"
        );
    }
    // The mutating webhook's defaults (IfNotPresent, 500m/512Mi, Default, 60).
    for lit in [
        "value: \"IfNotPresent\"",
        "value: {\"limits\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"},\"requests\":{\"cpu\":\"500m\",\"memory\":\"512Mi\"}}",
        "value: \"Default\"",
        "value: 60}",
    ] {
        assert!(e.contains(lit), "{lit} in {e}");
    }
}

#[test]
fn expressions_stay_small() {
    for g in gate_sets() {
        let p = validating_policy(&ExportOptions {
            gates: g,
            ..Default::default()
        });
        let mut sizes: Vec<(String, usize)> = Vec::new();
        for v in p["spec"]["variables"].as_array().unwrap() {
            sizes.push((
                v["name"].as_str().unwrap().into(),
                v["expression"].as_str().unwrap().len(),
            ));
        }
        for (name, n) in &sizes {
            assert!(*n <= 12 * 1024, "variable {name}: {n} bytes of CEL");
        }
        let total = serde_json::to_string(&p).unwrap().len();
        assert!(total <= 160 * 1024, "policy: {total} bytes");
    }
}

#[test]
fn every_kind_rule_is_exported_or_explained_once_and_names_are_unique() {
    use crate::model::Kind;
    for g in gate_sets() {
        for k in [Kind::RayJob, Kind::RayService, Kind::RayCronJob] {
            let p = policy_for(k, &g);
            let exported: Vec<&str> = p.checks.iter().map(|c| c.id).collect();
            let explained: Vec<&str> = not_exported_for(k, &g).iter().map(|n| n.rule).collect();
            for id in crate::rules::kinds::RULE_IDS {
                let n = exported.iter().filter(|x| *x == id).count()
                    + explained.iter().filter(|x| *x == id).count();
                let want = usize::from(kinds::applies(k, id));
                assert_eq!(
                    n, want,
                    "{k:?} {id}: exported {exported:?} / explained {explained:?}"
                );
            }
            // The embedded spec: every RayCluster rule but the metadata ones, once.
            for id in RULE_IDS {
                if ["M1", "M2"].contains(id)
                    || id.starts_with("CRD-")
                    || ["RG-TYPE", "ST1"].contains(id)
                {
                    continue;
                }
                let n = exported.iter().filter(|x| *x == id).count()
                    + explained.iter().filter(|x| *x == id).count();
                assert_eq!(n, 1, "{k:?} embedded {id}");
            }
            // Variable names are unique within a policy; CEL balances.
            let v = validating_policy_for(
                &ExportOptions {
                    gates: g.clone(),
                    ..Default::default()
                },
                k,
            );
            let mut names: Vec<&str> = v["spec"]["variables"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x["name"].as_str().unwrap())
                .collect();
            let n = names.len();
            names.sort();
            names.dedup();
            assert_eq!(n, names.len(), "{k:?}: duplicate variable names");
            for x in v["spec"]["variables"].as_array().unwrap() {
                balanced(x["expression"].as_str().unwrap());
            }
            for x in v["spec"]["validations"].as_array().unwrap() {
                balanced(x["expression"].as_str().unwrap());
                if let Some(m) = x["messageExpression"].as_str() {
                    balanced(m);
                }
            }
        }
    }
}

#[test]
fn embedded_checks_point_at_the_embedded_spec() {
    use crate::model::Kind;
    let p = policy_for(Kind::RayJob, &FeatureGates::default());
    let w5 = p.checks.iter().find(|c| c.id == "W5").unwrap();
    assert_eq!(
        w5.field_path,
        "spec.rayClusterSpec.workerGroupSpecs[].minReplicas"
    );
    assert!(
        w5.message_expression
            .as_deref()
            .unwrap()
            .starts_with("\"The RayJob spec is invalid: \" + ")
    );
    assert!(
        w5.expression
            .starts_with("!object.?spec.?rayClusterSpec.hasValue() || ")
    );
    // No expression of the embedded checks reads the RayJob's own spec as a cluster spec.
    for (_, x) in p
        .variables
        .iter()
        .chain(p.checks.iter().flat_map(|c| c.variables.iter()))
    {
        for (i, _) in x.match_indices("object.spec.") {
            let rest = &x[i + "object.spec.".len()..];
            assert!(
                !rest.starts_with("workerGroupSpecs") && !rest.starts_with("headGroupSpec"),
                "{x}"
            );
        }
    }
    let c = policy_for(Kind::RayCronJob, &FeatureGates::default());
    let w5 = c.checks.iter().find(|c| c.id == "W5").unwrap();
    assert_eq!(
        w5.field_path,
        "spec.jobTemplate.rayClusterSpec.workerGroupSpecs[].minReplicas"
    );
    let ann = c.variables.iter().find(|(n, _)| n == "ann").unwrap();
    assert_eq!(
        ann.1, "{}",
        "a RayCronJob's annotations do not reach the cluster"
    );
    let u2 = policy_for(Kind::RayService, &FeatureGates::default());
    let origin = u2.variables.iter().find(|(n, _)| n == "origin").unwrap();
    assert_eq!(origin.1, "\"RayService\"");
}
