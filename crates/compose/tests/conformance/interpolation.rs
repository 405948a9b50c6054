use rstack_compose::interpolate::{self, Error};

use crate::{env_of, read_json, report};

const KNOWN_GAPS: &[(&str, &str)] = &[];

#[test]
fn interpolation_cases() {
    let data = read_json("interpolation/cases.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let template = case["template"].as_str().unwrap();
        let env = env_of(&case["env"]);
        let mut unset = Vec::new();
        let got = interpolate::substitute(template, &env, &mut unset);
        let ok = match (&got, &case["expected"], &case["error"]) {
            (Ok(v), serde_json::Value::String(exp), _) => {
                v == exp
                    && case["warnings_logged"]
                        .as_u64()
                        .is_none_or(|n| n as usize == unset.len())
            }
            (Err(e), _, serde_json::Value::String(msg)) => e.to_string().contains(msg.as_str()),
            (Err(e), _, serde_json::Value::Bool(true)) => match &case["error_fields"] {
                serde_json::Value::Object(f) => {
                    matches!(e, Error::MissingRequired { variable, reason }
                    if f["Variable"] == variable.as_str() && f["Reason"] == reason.as_str())
                }
                _ => true,
            },
            _ => false,
        };
        // The message of the same template as a tree value.
        let tree_ok = match case["error_full_message_in_tree"].as_str() {
            None => true,
            Some(full) => {
                let mut node = rstack_compose::yaml::Node::from_json(&serde_json::json!({
                    "myservice": {"environment": {"TESTVAR": template}}
                }));
                match interpolate::interpolate_tree(&mut node, &env) {
                    Err(e) => crate::chain(&e).ends_with(full),
                    Ok(()) => false,
                }
            }
        };
        if !(ok && tree_ok) {
            failures.push(format!(
                "{name}: template {template:?} gave {got:?} (unset {unset:?})"
            ));
        }
    }
    report("interpolation/cases", cases.len(), &failures, KNOWN_GAPS);
}

#[test]
fn operator_choice() {
    let data = read_json("interpolation/operator_choice.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let body = case["braced_body"].as_str().unwrap();
        let got = interpolate::operator_of(body).map(|o| o.token());
        if got != case["operator"].as_str() {
            failures.push(format!("{}: {body:?} gave {got:?}", case["name"]));
        }
    }
    report(
        "interpolation/operator_choice",
        cases.len(),
        &failures,
        KNOWN_GAPS,
    );
}

#[test]
fn tree_cases() {
    let data = read_json("interpolation/tree_cases.json");
    let cases = data["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let env = env_of(&case["env"]);
        let mut node = rstack_compose::yaml::Node::from_json(&case["input"]);
        let got = interpolate::interpolate_tree(&mut node, &env);
        let ok = match (&got, case["error_exact"].as_str()) {
            (Ok(()), None) => node.to_json() == case["expected"],
            (Err(e), Some(msg)) => crate::chain(&e).ends_with(msg),
            _ => false,
        };
        if !ok {
            failures.push(format!("{}: {got:?} {}", case["name"], node.to_json()));
        }
    }
    report(
        "interpolation/tree_cases",
        cases.len(),
        &failures,
        KNOWN_GAPS,
    );
}
