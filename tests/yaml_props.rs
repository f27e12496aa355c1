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
    fn emitter_round_trips(v in json_value()) {
        let y = yaml::to_yaml(&v);
        let back = yaml::parse_all(&y);
        prop_assert!(back.is_ok(), "{:?}\n{}", back.err(), y);
        let back = back.unwrap_or_default();
        prop_assert_eq!(back.len(), 1, "{}", y);
        prop_assert_eq!(&back[0].value, &v, "{}", y);
    }
}
