//! The TypeScript types the wasm package declares (`TS_TYPES` in src/bindings.rs) against the Rust types
//! that cross the JS boundary: every field serde writes is declared, every declared field is written, and
//! a field is optional (`?`) exactly when Rust may leave it out. Hand-written types cannot drift.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use tweetguard::postprocess::Prediction;
use tweetguard::{BackendKind, Classification, ModelInfo, Timings};

/// The `TS_TYPES` text of src/bindings.rs, comments removed.
fn declared_types() -> String {
    let source = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/bindings.rs")).unwrap();
    let start = source.find("const TS_TYPES: &str = r#\"").expect("TS_TYPES in src/bindings.rs");
    let text = &source[start..];
    let text = &text[text.find('"').unwrap() + 1..text.find("\"#;").unwrap()];
    let mut plain = String::new();
    let mut rest = text;
    while let Some(open) = rest.find("/**") {
        plain.push_str(&rest[..open]);
        rest = &rest[open + rest[open..].find("*/").expect("closed comment") + 2..];
    }
    plain + rest
}

/// The fields of `export interface name { ... }`: name -> (optional, type text).
fn interface(types: &str, name: &str) -> BTreeMap<String, (bool, String)> {
    let head = format!("export interface {name} {{");
    let body_start = types.find(&head).unwrap_or_else(|| panic!("interface {name} is declared")) + head.len();
    let (mut depth, mut fields, mut field) = (0usize, BTreeMap::new(), String::new());
    let mut push = |field: &mut String| {
        let text = std::mem::take(field);
        let text = text.trim();
        if let Some((key, ty)) = text.split_once(':') {
            let key = key.trim();
            let optional = key.ends_with('?');
            fields.insert(key.trim_end_matches('?').to_string(), (optional, ty.trim().to_string()));
        }
    };
    for c in types[body_start..].chars() {
        match c {
            '}' if depth == 0 => break,
            ';' | '\n' if depth == 0 => push(&mut field),
            _ => {
                depth = match c {
                    '{' | '(' | '[' => depth + 1,
                    '}' | ')' | ']' => depth - 1,
                    _ => depth,
                };
                field.push(c);
            }
        }
    }
    push(&mut field);
    fields
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().expect("an object").keys().cloned().collect()
}

/// `declared` matches the serialized `sparse` (every `Option` None) and `full` (every `Option` Some).
fn assert_matches(name: &str, declared: &BTreeMap<String, (bool, String)>, sparse: &Value, full: &Value) {
    let all: BTreeSet<String> = declared.keys().cloned().collect();
    let required: BTreeSet<String> =
        declared.iter().filter(|(_, (optional, _))| !optional).map(|(k, _)| k.clone()).collect();
    assert_eq!(all, keys(full), "{name}: the declared fields are not the fields Rust writes");
    assert_eq!(required, keys(sparse), "{name}: the fields declared without `?` are not the ones Rust always writes");
}

fn prediction() -> Prediction {
    let probabilities = BTreeMap::from([("human".to_string(), 0.25), ("bot".to_string(), 0.75)]);
    Prediction { label: "bot".into(), score: 0.75, probabilities, truncated: false, logits: vec![0.0, 1.1] }
}

#[test]
fn classify_output_is_declared_as_rust_writes_it() {
    let types = declared_types();
    let output = |fallback_reason: Option<String>| Classification {
        backend: BackendKind::Cpu,
        fallback_reason,
        timings: Timings { tokenize_ms: 1.0, infer_ms: 2.0 },
        results: vec![prediction()],
    };
    let (sparse, full) =
        (serde_json::to_value(output(None)).unwrap(), serde_json::to_value(output(Some("no GPU".into()))).unwrap());
    let declared = interface(&types, "ClassifyOutput");
    assert_matches("ClassifyOutput", &declared, &sparse, &full);
    let timings = &declared["timings"].1;
    for key in keys(&full["timings"]) {
        assert!(timings.contains(&format!("{key}:")), "ClassifyOutput.timings does not declare {key}: {timings}");
    }
    assert_eq!(declared["results"].1, "Prediction[]");
}

#[test]
fn prediction_is_declared_as_rust_writes_it() {
    let value = serde_json::to_value(prediction()).unwrap();
    assert_matches("Prediction", &interface(&declared_types(), "Prediction"), &value, &value);
}

#[test]
fn classifier_info_is_declared_as_rust_writes_it() {
    let info = |some: bool| ModelInfo {
        labels: vec!["human".into(), "bot".into()],
        max_length: 128,
        dtype: "int8".into(),
        backend: "cpu".into(),
        adapter: some.then(|| "SwiftShader".into()),
        cpu_kernel: some.then(|| "int8 wasm-simd128".into()),
        cpu_kernel_reason: some.then(|| "raced at load".into()),
        optimized: some,
        untrained_head: false,
        temperature: 1.0,
        heap_bytes: some.then_some(1 << 26),
    };
    let (sparse, full) = (serde_json::to_value(info(false)).unwrap(), serde_json::to_value(info(true)).unwrap());
    assert_matches("ClassifierInfo", &interface(&declared_types(), "ClassifierInfo"), &sparse, &full);
}
