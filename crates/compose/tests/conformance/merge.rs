use rstack_compose::merge;
use rstack_compose::yaml::{self, Node};

use crate::{data_dir, read_json, report};

const KNOWN_GAPS: &[(&str, &str)] = &[];

fn load(folder: &std::path::Path, name: &str) -> Node {
    let path = folder.join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    yaml::parse_one(&text, &path.display().to_string())
        .unwrap()
        .unwrap_or_else(|| Node::synthetic(yaml::Value::Map(Default::default())))
}

#[test]
fn merge_triples() {
    let index = read_json("merge/index.json");
    let cases = index["cases"].as_array().unwrap();
    let mut failures = Vec::new();
    for case in cases {
        let name = case["folder"].as_str().unwrap();
        let folder = data_dir().join("merge").join(name);
        let base = load(&folder, "base.yaml");
        let mut got = match case["operation"].as_str() {
            Some("unicity") => base,
            _ => merge::merge(base, load(&folder, "override.yaml")),
        };
        if case["enforce_unicity"] == true || case["operation"] == "unicity" {
            if let Err(e) = merge::enforce_unicity(&mut got) {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        }
        let expected = load(&folder, "expected.yaml");
        if got != expected {
            failures.push(format!(
                "{name}:\n  got      {}\n  expected {}",
                got.to_json(),
                expected.to_json()
            ));
        }
    }
    assert_eq!(cases.len(), 71);
    report("merge", cases.len(), &failures, KNOWN_GAPS);
}
