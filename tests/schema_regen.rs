//! The committed schemas under `schemas/` are exactly what the Rust model generates.

#[test]
fn committed_schemas_match_the_model() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut stale = Vec::new();
    for (name, generated) in raygate::schema::generate_all() {
        let committed = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if committed != generated {
            stale.push(name);
        }
    }
    assert!(
        stale.is_empty(),
        "schemas/{stale:?} differ from the Rust model; regenerate with \
         `cargo run -- schema --out schemas` and commit the result"
    );
}

#[test]
fn embedded_schemas_are_the_committed_files() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    assert_eq!(
        std::fs::read_to_string(dir.join("raycluster.v1.json")).unwrap(),
        raygate::schema::V1_JSON
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("raycluster.v1alpha1.json")).unwrap(),
        raygate::schema::V1ALPHA1_JSON
    );
    for api in ["ray.io/v1", "ray.io/v1alpha1"] {
        assert!(raygate::schema::compiled(api).is_ok(), "{api} compiles");
    }
}
