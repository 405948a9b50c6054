use std::collections::HashMap;

use rstack_compose::dotenv::{self, EnvMap};

use crate::{data_dir, env_of, read_json, report};

const KNOWN_GAPS: &[(&str, &str)] = &[];

fn starts_with_digit(k: &str) -> bool {
    k.chars().next().is_some_and(|c| c.is_ascii_digit())
}

/// Runs one API of the Go package over a text.
fn run_api(api: &str, text: &str, scenario: &serde_json::Value) -> Result<EnvMap, dotenv::Error> {
    let lookup = env_of(&scenario["lookup_env"]);
    let mut out = EnvMap::new();
    match api {
        "Read" => {
            dotenv::parse_into(text, &mut out, &|_: &str| None)?;
            out.retain(|k, _| !starts_with_digit(k));
        }
        "ReadWithLookup" => {
            dotenv::parse_into(text, &mut out, &lookup)?;
            out.retain(|k, _| !starts_with_digit(k));
        }
        "Load" => {
            let parsed = dotenv::parse(text)?;
            let preset = env_of(&scenario["preset_env"]);
            for (k, v) in &preset {
                out.insert(k.clone(), v.clone());
            }
            for (k, v) in parsed {
                out.entry(k).or_insert(v);
            }
        }
        _ => {
            if scenario["lookup_env"].is_object() {
                dotenv::parse_into(text, &mut out, &lookup)?;
            } else {
                dotenv::parse_into(text, &mut out, &|_: &str| None)?;
            }
        }
    }
    Ok(out)
}

fn check(got: Result<EnvMap, dotenv::Error>, s: &serde_json::Value) -> Result<(), String> {
    let got = match (got, &s["error"], s["error_exact"].as_str()) {
        (Err(e), serde_json::Value::String(msg), _) if crate::chain(&e).contains(msg.as_str()) => {
            return Ok(());
        }
        (Err(_), serde_json::Value::Bool(true), _) => return Ok(()),
        (Err(e), _, Some(exact)) if e.to_string() == exact => return Ok(()),
        (Err(e), _, _) => return Err(format!("error {e}")),
        (Ok(m), serde_json::Value::Null, None) => m,
        (Ok(m), _, _) => return Err(format!("expected an error, got {m:?}")),
    };
    let expected: HashMap<String, String> = env_of(&s["expected"]);
    for (k, v) in &expected {
        let g = got.get(k).map(|g| g.replace("\r\n", "\n"));
        if g.as_deref() != Some(v.as_str()) {
            return Err(format!("{k}: got {g:?}, want {v:?}"));
        }
    }
    if s["exact"] == true && got.len() != expected.len() {
        return Err(format!(
            "got {} keys, want {}: {got:?}",
            got.len(),
            expected.len()
        ));
    }
    for k in s["absent_keys"].as_array().into_iter().flatten() {
        if got.contains_key(k.as_str().unwrap()) {
            return Err(format!("{k} should be absent"));
        }
    }
    Ok(())
}

#[test]
fn dotenv_fixtures() {
    let data = read_json("dotenv/expected.json");
    let mut total = 0;
    let mut failures = Vec::new();
    for (file, scenarios) in data["fixtures"].as_object().unwrap() {
        let path = data_dir().join("dotenv/fixtures").join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        for s in scenarios.as_array().into_iter().flatten() {
            total += 1;
            let got = run_api(s["api"].as_str().unwrap_or(""), &text, s);
            if let Err(why) = check(got, s) {
                failures.push(format!("{file} {}: {why}", s["test"]));
            }
        }
    }
    report("dotenv/fixtures", total, &failures, KNOWN_GAPS);
}

#[test]
fn dotenv_inline() {
    let data = read_json("dotenv/expected.json");
    let cases = data["inline"].as_array().unwrap();
    let mut failures = Vec::new();
    for c in cases {
        let got = run_api("Parse", c["input"].as_str().unwrap(), c);
        if let Err(why) = check(got, c) {
            failures.push(format!("{} {:?}: {why}", c["name"], c["input"]));
        }
    }
    report("dotenv/inline", cases.len(), &failures, KNOWN_GAPS);
}

#[test]
fn dotenv_multi_file_and_filesystem() {
    let data = read_json("dotenv/expected.json");
    let mut total = 0;
    let mut failures = Vec::new();
    for c in data["multi_file"].as_array().unwrap() {
        total += 1;
        let dir = tempfile::tempdir().unwrap();
        let mut paths = Vec::new();
        for f in c["files"].as_array().unwrap() {
            let p = dir.path().join(f["name"].as_str().unwrap());
            std::fs::write(&p, f["content"].as_str().unwrap()).unwrap();
            paths.push(p);
        }
        let current = env_of(&c["current_env"]);
        if let Err(why) = check(dotenv::read_files(&paths, &current), c) {
            failures.push(format!("{}: {why}", c["name"]));
        }
    }
    for c in data["filesystem"].as_array().unwrap() {
        total += 1;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(".env");
        std::fs::create_dir(&p).unwrap();
        match dotenv::read_files(&[p], &HashMap::<String, String>::new()) {
            Err(e) if crate::chain(&e).ends_with(c["error_suffix"].as_str().unwrap()) => {}
            other => failures.push(format!("{}: {other:?}", c["name"])),
        }
    }
    report("dotenv/multi_file+filesystem", total, &failures, KNOWN_GAPS);
}
