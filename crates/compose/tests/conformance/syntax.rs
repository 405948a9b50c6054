use rstack_compose::short;

use crate::{read_json, report};

const KNOWN_GAPS: &[(&str, &str)] = &[];

/// Go zero values (`false`, `""`) in an expected object mean "absent".
fn strip_zero(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(o) => o
            .iter()
            .filter(|(_, v)| !(v == &&serde_json::json!(false) || v == &&serde_json::json!("")))
            .map(|(k, v)| (k.clone(), strip_zero(v)))
            .collect(),
        other => other.clone(),
    }
}

fn error_ok(err: &str, expected: &serde_json::Value) -> bool {
    let text = expected["text"].as_str().unwrap_or_default();
    match expected["match"].as_str() {
        Some("exact") => err == text,
        _ => err.contains(text),
    }
}

#[test]
fn volume_short_syntax() {
    let data = read_json("syntax/volumes.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let spec = c["spec"].as_str().unwrap();
        let got = short::parse_volume(spec);
        let ok = if let Some(has) = c["has_source"].as_bool() {
            got.as_ref().is_ok_and(|v| !v.source.is_empty()) == has
        } else if c["ok"] == true {
            got.is_ok()
        } else if c["error"].is_object() {
            got.as_ref()
                .is_err_and(|e| error_ok(&e.to_string(), &c["error"]))
        } else {
            got.as_ref()
                .is_ok_and(|v| serde_json::to_value(v).unwrap() == strip_zero(&c["expected"]))
        };
        if !ok {
            failures.push(format!("{} {spec:?}: {got:?}", c["test"]));
        }
    }
    report("syntax/volumes", cases.len(), &failures, KNOWN_GAPS);
}

#[test]
fn port_short_syntax() {
    let data = read_json("syntax/ports.json");
    let cases = data["parse_port_config"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let spec = c["spec"].as_str().unwrap();
        let got = short::parse_port(spec);
        let ok = match (&got, c["expected"].as_array()) {
            (Ok(ports), Some(exp)) => {
                let got: Vec<serde_json::Value> = ports
                    .iter()
                    .map(|p| serde_json::to_value(p).unwrap())
                    .collect();
                got.len() == exp.len() && exp.iter().all(|e| got.contains(e))
            }
            (Err(e), None) => error_ok(&e.to_string(), &c["error"]),
            _ => false,
        };
        if !ok {
            failures.push(format!("{spec:?}: {got:?}"));
        }
    }
    let mut total = cases.len();
    for c in data["transform_ports"].as_array().unwrap() {
        total += 1;
        let mut out = Vec::new();
        let mut err = None;
        for spec in c["input"].as_array().unwrap() {
            let spec = spec.as_str().unwrap();
            match short::parse_port(spec) {
                Ok(ports) => out.extend(ports.iter().map(|p| serde_json::to_value(p).unwrap())),
                Err(_) if c["ignore_parse_error"] == true => out.push(serde_json::json!(spec)),
                Err(e) => err = Some(e.to_string()),
            }
        }
        let ok = match (&err, c["expected"].as_array()) {
            (None, Some(exp)) => &out == exp,
            (Some(e), None) => error_ok(e, &c["error"]),
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: {out:?} {err:?}", c["test"]));
        }
    }
    report("syntax/ports", total, &failures, KNOWN_GAPS);
}
