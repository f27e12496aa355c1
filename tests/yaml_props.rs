//! Property tests: the YAML reader and the validation pipeline never panic on arbitrary input,
//! and the YAML emitter round-trips every JSON value through the parser.
//!
//! Case counts: `PROPTEST_CASES` (default below) per property.

use proptest::prelude::*;
use raygate::pipeline::Checker;
use raygate::yaml;
use serde_json::Value;

const CASES: u32 = 3000;

fn cfg() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Fragments that exercise YAML's syntax: indentation, flow, anchors, tags, scalars, docs.
fn yamlish() -> impl Strategy<Value = String> {
    let frag = prop::sample::select(vec![
        "\n",
        "\n  ",
        "\n    ",
        "- ",
        ": ",
        "? ",
        "---\n",
        "...\n",
        "[",
        "]",
        "{",
        "}",
        ", ",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: *a\n",
        "!!str ",
        "!!int ",
        "!!bool ",
        "!foo ",
        "|\n  ",
        ">-\n  ",
        "\"",
        "'",
        "#c",
        "\t",
        "~",
        "yes",
        "0777",
        "0x1F",
        ".inf",
        "1e3",
        "-",
        "apiVersion: ray.io/v1\n",
        "kind: RayCluster\n",
        "kind: List\nitems:\n",
        "spec:\n",
        "  workerGroupSpecs:\n",
        "  - groupName: g\n",
        "    minReplicas: -1\n",
        "    maxReplicas: 5\n",
        "replicas: x\n",
        "metadata:\n  name: n\n",
        "headGroupSpec:\n",
        "template:\n",
        "containers: []\n",
        "key",
        "a",
        "\u{feff}",
        "\u{85}",
        "\\",
        "%YAML 1.2\n",
        "%TAG ! tag:x,2000:\n",
        "\r\n",
        " ",
    ]);
    prop::collection::vec(frag, 0..40).prop_map(|v| v.concat())
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(vec![
            "yes", "No", "on", "OFF", "y", "n", "~", "null", "0777", "09", "1e3", "-", "- x",
            "a: b", "#x", "x #y", "", " ", "\n", "a\nb\n", "a\n\n", "|", ">", "*x", "&y", "!t",
            "---", "...", "12", "1_000", "0x10", ".5", "+1", "true", "\t", "\"q\"", "'s'", "{}",
            "[]", "@x", "`x",
        ])
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec(("[a-zA-Z0-9_./ :#-]{0,8}", inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn read_all(bytes: &[u8]) -> usize {
    let mut n = 0;
    // Errors are fine; panics are not. (`flatten` keeps going after an error, like the CLI.)
    for c in yaml::chunks_of(bytes).flatten() {
        for d in yaml::documents(&c.text, c.line_offset).flatten() {
            // Locating arbitrary paths never panics either.
            let _ = d.locate("spec.workerGroupSpecs[0].minReplicas");
            let _ = d.locate("a[3][x].b[\"c\"]");
            n += 1;
        }
    }
    n
}

/// Places in a RayCluster where arbitrary values are put by the mutation property.
const PATHS: &[&str] = &[
    "spec",
    "metadata",
    "metadata/name",
    "metadata/annotations",
    "spec/enableInTreeAutoscaling",
    "spec/autoscalerOptions",
    "spec/autoscalerOptions/resources",
    "spec/autoscalerOptions/resources/limits",
    "spec/autoscalerOptions/idleTimeoutSeconds",
    "spec/headGroupSpec",
    "spec/headGroupSpec/rayStartParams",
    "spec/headGroupSpec/template",
    "spec/headGroupSpec/template/spec/containers",
    "spec/workerGroupSpecs",
    "spec/workerGroupSpecs/0",
    "spec/workerGroupSpecs/0/replicas",
    "spec/workerGroupSpecs/0/minReplicas",
    "spec/workerGroupSpecs/0/maxReplicas",
    "spec/workerGroupSpecs/0/numOfHosts",
    "spec/workerGroupSpecs/0/groupName",
    "spec/workerGroupSpecs/0/template/spec/containers/0/resources",
    "spec/gcsFaultToleranceOptions",
    "spec/networkPolicy",
    "spec/tlsOptions",
    "spec/authOptions",
    "spec/rayVersion",
    "status",
];

fn base() -> Value {
    serde_json::json!({
        "apiVersion": "ray.io/v1",
        "kind": "RayCluster",
        "metadata": {"name": "prop"},
        "spec": {
            "rayVersion": "2.52.0",
            "enableInTreeAutoscaling": true,
            "autoscalerOptions": {"resources": {"limits": {"cpu": "1"}}},
            "headGroupSpec": {"rayStartParams": {}, "template": {"spec": {"containers": [
                {"name": "ray-head", "image": "rayproject/ray:2.52.0"}]}}},
            "workerGroupSpecs": [{"groupName": "g", "replicas": 1, "minReplicas": 0, "maxReplicas": 3,
                "rayStartParams": {}, "template": {"spec": {"containers": [
                    {"name": "w", "image": "rayproject/ray:2.52.0", "resources": {}}]}}}]
        }
    })
}

fn set(v: &mut Value, path: &str, val: Value) {
    let mut cur = v;
    let segs: Vec<&str> = path.split('/').collect();
    for (i, seg) in segs.iter().enumerate() {
        let last = i + 1 == segs.len();
        let next = match cur {
            Value::Object(m) => {
                if last {
                    m.insert(seg.to_string(), val);
                    return;
                }
                m.entry(seg.to_string()).or_insert(Value::Null)
            }
            Value::Array(a) => match seg.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(x) if last => {
                    *x = val;
                    return;
                }
                Some(x) => x,
                None => return,
            },
            _ => return,
        };
        cur = next;
    }
}

proptest! {
    #![proptest_config(cfg())]

    #[test]
    fn reader_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        read_all(&bytes);
    }

    #[test]
    fn reader_never_panics_on_yamlish(s in yamlish()) {
        read_all(s.as_bytes());
    }

    #[test]
    fn pipeline_never_panics(s in yamlish()) {
        let c = Checker::default();
        for r in c.check_text(&s, 0) {
            for f in &r.findings {
                prop_assert!(!f.message.contains("internal error"), "{}", f.message);
            }
        }
    }

    #[test]
    fn pipeline_never_panics_on_mutated_rayclusters(
        edits in prop::collection::vec((prop::sample::select(PATHS.to_vec()), json_value()), 1..4)
    ) {
        let mut v = base();
        for (path, val) in edits {
            set(&mut v, path, val);
        }
        let y = yaml::to_yaml(&v);
        let c = Checker::default();
        let reports = c.check_text(&y, 0);
        prop_assert!(!reports.is_empty());
        for r in &reports {
            for f in &r.findings {
                prop_assert!(!f.message.contains("internal error"), "{}\n{}", f.message, y);
                prop_assert!(f.line >= 1 && f.line <= y.lines().count().max(1), "{:?}\n{}", f, y);
            }
        }
    }

    #[test]
    fn emitter_round_trips(v in json_value()) {
        let y = yaml::to_yaml(&v);
        let back = yaml::parse_all(&y);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), y);
        let back = back.unwrap_or_default();
        prop_assert_eq!(back.len(), 1, "{}", y);
        prop_assert_eq!(&back[0].value, &v, "{}", y);
    }
}
