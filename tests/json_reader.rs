//! `raygate::json` against `serde_json`: on every input, what the reader returns must be what
//! `serde_json::from_slice::<Value>` returns (member order included), and on input serde_json
//! refuses it must return nothing (so `json::from_slice` gives serde_json's error). Inputs:
//! generated documents (compact, pretty, odd whitespace, escapes, non-ASCII, numbers of every
//! shape), the same documents mutated byte by byte, and every KubeRay sample as JSON.

use proptest::prelude::*;
use serde_json::{Map, Value};
use std::sync::atomic::{AtomicUsize, Ordering};

static COMPARED: AtomicUsize = AtomicUsize::new(0);
static READ: AtomicUsize = AtomicUsize::new(0);

/// Compares the reader with serde_json on `bytes`; returns whether the reader read it.
fn agree(bytes: &[u8]) -> bool {
    COMPARED.fetch_add(1, Ordering::Relaxed);
    let ours = raygate::json::parse(bytes);
    let theirs = serde_json::from_slice::<Value>(bytes);
    match (ours, theirs) {
        (Some(a), Ok(b)) => {
            assert_eq!(a, b, "input {:?}", String::from_utf8_lossy(bytes));
            assert_eq!(
                serde_json::to_string(&a).unwrap(),
                serde_json::to_string(&b).unwrap(),
                "member order, input {:?}",
                String::from_utf8_lossy(bytes)
            );
            READ.fetch_add(1, Ordering::Relaxed);
            true
        }
        (Some(a), Err(e)) => panic!(
            "read {a} from {:?}, which serde_json refuses: {e}",
            String::from_utf8_lossy(bytes)
        ),
        (None, theirs) => {
            // json::from_slice falls back: same result, same error text.
            let fallback = raygate::json::from_slice(bytes);
            match (fallback, theirs) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("fallback differs: {a:?} vs {b:?}"),
            }
            false
        }
    }
}

fn string_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_./-]{0,12}",
        any::<String>(),
        prop::collection::vec(
            prop_oneof![
                Just('"'),
                Just('\\'),
                Just('\n'),
                Just('\u{1}'),
                Just('\u{1f}'),
                Just('\u{7f}'),
                Just('é'),
                Just('😀'),
                Just('\u{2028}'),
                any::<char>(),
                Just('a'),
            ],
            0..40
        )
        .prop_map(|cs| cs.into_iter().collect()),
    ]
}

fn number_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (0u64..100).prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        (-1000i32..1000, -30i32..30).prop_map(|(m, e)| Value::from(m as f64 * 10f64.powi(e))),
    ]
}

fn value_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number_strategy(),
        string_strategy().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 120, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((prop_oneof!["[a-z]{1,3}", string_strategy()], inner), 0..8)
                .prop_map(|members| {
                    let mut m = Map::new();
                    for (k, v) in members {
                        m.insert(k, v);
                    }
                    Value::Object(m)
                }),
        ]
    })
}

/// Text forms of a document: compact, pretty, with escapes for every non-ASCII character and
/// every `/`, with whitespace between all tokens, and with a repeated member; each with
/// whether it is well formed.
fn texts(v: &Value) -> Vec<(Vec<u8>, bool)> {
    let compact = serde_json::to_vec(v).unwrap();
    let pretty = serde_json::to_vec_pretty(v).unwrap();
    let mut escaped = String::new();
    for c in String::from_utf8(compact.clone()).unwrap().chars() {
        match c {
            '/' => escaped.push_str("\\/"),
            c if !c.is_ascii() => {
                let mut buf = [0u16; 2];
                for u in c.encode_utf16(&mut buf) {
                    escaped.push_str(&format!("\\u{u:04X}"));
                }
            }
            c => escaped.push(c),
        }
    }
    // '/' and non-ASCII only occur inside strings in serde_json's output, so the escaped
    // text is the same document.
    let spaced: Vec<u8> = compact
        .iter()
        .flat_map(|&b| match b {
            b'{' | b'[' | b',' | b':' => vec![b, b' ', b'\t'],
            b'}' | b']' => vec![b'\r', b'\n', b],
            _ => vec![b],
        })
        .collect();
    // (The spacing also lands inside strings that hold those bytes: a tab there is a control
    // character both must refuse, so that form is not always readable.)
    let mut out = vec![
        (compact, true),
        (pretty, true),
        (escaped.into_bytes(), true),
        (spaced, false),
    ];
    if let Value::Object(m) = v
        && let Some((k, _)) = m.iter().next()
    {
        let key = serde_json::to_string(k).unwrap();
        let mut dup = serde_json::to_vec(v).unwrap();
        dup.pop(); // '}'
        dup.extend_from_slice(format!(",{key}:\"again\"}}").as_bytes());
        out.push((dup, true));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn generated_documents_read_alike(v in value_strategy()) {
        let shallow = depth(&v) < raygate::json::MAX_DEPTH;
        for (t, well_formed) in texts(&v) {
            let read = agree(&t);
            // Well-formed documents are read by the reader itself, not left to serde_json.
            prop_assert!(read || !well_formed || !shallow, "not read: {}", String::from_utf8_lossy(&t));
        }
    }

    #[test]
    fn mutated_documents_read_alike(
        v in value_strategy(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..4),
    ) {
        let mut bytes = serde_json::to_vec(&v).unwrap();
        for (at, byte, how) in edits {
            if bytes.is_empty() {
                bytes.push(byte);
                continue;
            }
            let i = at.index(bytes.len());
            match how {
                0 => bytes[i] = byte,
                1 => bytes.insert(i, byte),
                2 => { bytes.remove(i); }
                _ => bytes.truncate(i),
            }
        }
        agree(&bytes);
    }

    #[test]
    fn structural_bytes_in_odd_places_read_alike(
        parts in prop::collection::vec(
            prop_oneof![
                Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"),
                Just("\""), Just("\\"), Just("\\u"), Just("d800"), Just("dc00"), Just("00e9"),
                Just("1"), Just("-"), Just("0"), Just("."), Just("e"), Just("+"),
                Just("true"), Just("nul"), Just(" "), Just("\n"), Just("a"), Just("é"),
                Just("\u{1}"),
            ],
            0..24,
        )
    ) {
        agree(parts.concat().as_bytes());
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

#[test]
fn every_kuberay_sample_reads_alike() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/kuberay/samples");
    let mut n = 0;
    for e in std::fs::read_dir(&dir).expect("../shared/kuberay/samples") {
        let p = e.unwrap().path();
        if p.extension().is_none_or(|x| x != "yaml") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for doc in raygate::yaml::documents(&text, 0).flatten() {
            let v = doc.value;
            for (t, well_formed) in texts(&v) {
                assert!(agree(&t) || !well_formed, "{} is read", p.display());
            }
            n += 1;
        }
    }
    assert!(n >= 48, "read {n} sample documents");
}

#[test]
fn zz_report_counts() {
    // Informational (cargo test runs tests in parallel; this is whatever ran before it).
    eprintln!(
        "json_reader: {} inputs compared, {} read by the reader",
        COMPARED.load(Ordering::Relaxed),
        READ.load(Ordering::Relaxed)
    );
}
