//! `schemas/krill.schema.json` is generated from the raw recipe types and must stay
//! in sync with them. `KRILL_BLESS=1 cargo test -p krill-gen --test schema` rewrites it.

#[test]
fn published_schema_matches_the_rust_types() {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas/krill.schema.json");
    let generated = krill::compile::raw::schema();
    if std::env::var_os("KRILL_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let published = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        published == generated,
        "schemas/krill.schema.json is stale: rerun with KRILL_BLESS=1"
    );
    let v: serde_json::Value = serde_json::from_str(&published).unwrap();
    assert_eq!(
        v["additionalProperties"], false,
        "unknown fields are rejected"
    );
    assert!(v["properties"]["services"].is_object());
}
