use serde_json::json;

use super::*;

fn errors(schema: J, v: J) -> Vec<SchemaError> {
    Validator::new(&schema).unwrap().errors(&schema, &v)
}

fn kinds(schema: J, v: J) -> Vec<Kind> {
    errors(schema, v).into_iter().map(|e| e.kind).collect()
}

#[test]
fn the_embedded_compose_schema_compiles() {
    let s: J = serde_json::from_str(crate::validate::SCHEMA).unwrap();
    let v = Validator::new(&s).unwrap();
    assert!(
        v.errors(&s, &json!({"services": {"a": {"image": "x"}}}))
            .is_empty()
    );
}

#[test]
fn unsupported_keywords_and_dangling_refs_are_refused() {
    let e = Validator::new(&json!({"properties": {"a": {"minLength": 2}}})).err();
    assert_eq!(
        e.as_deref(),
        Some("#/properties/a: keyword `minLength` is not supported")
    );
    let e = Validator::new(&json!({"items": {"$ref": "#/$defs/nope"}})).err();
    assert_eq!(
        e.as_deref(),
        Some("#/items/$ref: cannot resolve \"#/$defs/nope\"")
    );
    assert!(Validator::new(&json!({"pattern": "("})).is_err());
}

#[test]
fn types_integers_and_unions() {
    let s = json!({"type": ["integer", "null"]});
    assert!(kinds(s.clone(), json!(3)).is_empty());
    assert!(kinds(s.clone(), json!(3.0)).is_empty());
    assert!(kinds(s.clone(), J::Null).is_empty());
    assert_eq!(
        kinds(s, json!(3.5)),
        vec![Kind::Type {
            types: vec!["integer".into(), "null".into()]
        }]
    );
    assert!(kinds(json!({"type": "number"}), json!(1)).is_empty());
}

#[test]
fn objects_report_unknown_keys_missing_keys_and_nested_paths() {
    let s = json!({
        "type": "object",
        "required": ["a"],
        "properties": {"a": {"type": "string"}},
        "patternProperties": {"^x-": {}},
        "additionalProperties": false
    });
    assert!(kinds(s.clone(), json!({"a": "x", "x-y": 1})).is_empty());
    let e = errors(s, json!({"a": 1, "b": 2, "c": 3}));
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path, vec![Seg::Key("a".into())]);
    assert!(matches!(e[0].kind, Kind::Type { .. }));
    assert_eq!(
        e[1].kind,
        Kind::AdditionalProperties {
            unexpected: vec!["b".into(), "c".into()]
        }
    );
    let e = errors(json!({"required": ["a"]}), json!({}));
    assert_eq!(e[0].to_string(), "missing required key a");
}

#[test]
fn additional_properties_schema_applies_to_the_rest() {
    let s = json!({"properties": {"a": {}}, "additionalProperties": {"type": "string"}});
    let e = errors(s, json!({"a": 1, "b": 2}));
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].path, vec![Seg::Key("b".into())]);
}

#[test]
fn refs_items_and_unique_items() {
    let s = json!({
        "$defs": {"port": {"type": "integer", "minimum": 1, "maximum": 65535}},
        "type": "array",
        "uniqueItems": true,
        "items": {"$ref": "#/$defs/port"}
    });
    assert!(kinds(s.clone(), json!([80, 443])).is_empty());
    let e = errors(s.clone(), json!([80, 0, 70000]));
    assert_eq!(e[0].path, vec![Seg::Index(1)]);
    assert_eq!(e[0].to_string(), "0 is less than the minimum of 1");
    assert_eq!(
        e[1].to_string(),
        "70000 is greater than the maximum of 65535"
    );
    assert_eq!(kinds(s, json!([80, 80.0])), vec![Kind::UniqueItems]);
}

#[test]
fn one_of_needs_exactly_one_branch() {
    let s = json!({"oneOf": [{"type": "string"}, {"type": "integer"}, {"type": "number"}]});
    assert!(kinds(s.clone(), json!("x")).is_empty());
    assert_eq!(kinds(s.clone(), json!(1)), vec![Kind::OneOfMultipleValid]);
    match &kinds(s, json!(true))[..] {
        [Kind::OneOfNotValid { context }] => assert_eq!(context.len(), 3),
        other => panic!("{other:?}"),
    }
    let any = json!({"anyOf": [{"type": "string"}, {"type": "integer"}]});
    assert!(kinds(any.clone(), json!(1)).is_empty());
    assert!(matches!(kinds(any, J::Null)[..], [Kind::AnyOf { .. }]));
}

#[test]
fn enum_const_and_unanchored_patterns() {
    assert!(kinds(json!({"enum": ["a", 1]}), json!(1.0)).is_empty());
    let e = errors(json!({"enum": ["a", "b"]}), json!("c"));
    assert_eq!(e[0].to_string(), r#""c" is not one of ["a","b"]"#);
    assert_eq!(
        kinds(json!({"const": 2}), json!(3)),
        vec![Kind::Const { expected: json!(2) }]
    );
    // JSON Schema patterns search; only `^`/`$` anchor them.
    let s = json!({"pattern": "[a-z]+"});
    assert!(kinds(s.clone(), json!("1a1")).is_empty());
    assert_eq!(
        errors(s, json!("123"))[0].to_string(),
        r#""123" does not match "[a-z]+""#
    );
}

#[test]
fn false_subschemas_allow_nothing() {
    let s = json!({"properties": {"a": false}});
    assert_eq!(kinds(s, json!({"a": 1})), vec![Kind::False]);
}
