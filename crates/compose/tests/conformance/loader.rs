use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use rstack_compose::{Options, Project, load};
use serde_json::{Value as J, json};

use crate::{data_dir, env_collect, read_json, report};

/// Cases where rstack deliberately differs from compose-go's library API,
/// with the reason (also in docs/compose-compatibility.md).
const KNOWN_GAPS: &[(&str, &str)] = &[
    (
        "36-project-name-options/default",
        "compose-go's bare loader API has no name fallback; rstack loads like the docker compose CLI, which falls back to the directory name",
    ),
    (
        "36-project-name-options/project name from environment",
        "same: the docker compose CLI takes COMPOSE_PROJECT_NAME from the environment, compose-go's loader API ignores it",
    ),
    (
        "37-project-name-cli/by working dir",
        "the Go test ran in compose-go's cli/ folder, so the expected name is \"cli\"; the copied case folder has another name",
    ),
    (
        "37-project-name-cli/TestProjectNameFromWorkingDir",
        "rstack always reads the project directory's .env like the docker compose CLI; this compose-go test loads without WithDotEnv",
    ),
];

fn env_map(v: &J) -> IndexMap<String, String> {
    env_collect(v)
}

fn options_for(folder: &Path, input: &J) -> Options {
    let wd = folder.join(input["working_dir"].as_str().unwrap_or("."));
    let mut o = Options::new(folder, env_map(&input["env"]));
    o.project_directory = Some(wd);
    o.files = input["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| folder.join(f.as_str().unwrap()))
        .collect();
    let opts = &input["options"];
    o.validate_schema = opts["skip_validation"] != true;
    o.interpolate = opts["skip_interpolation"] != true;
    o.normalize = opts["skip_normalization"] != true;
    o.consistency = opts["skip_consistency_check"] != true;
    o.resolve_paths = opts["resolve_paths"] != false;
    if let Some(n) = input["project_name"]["name"].as_str() {
        o.project_name = Some(n.to_string());
    }
    o.profiles = input["profiles"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    o.services = input["selected_services"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(String::from))
        .collect();
    o.discard_env_files = input["discard_env_files"] == true;
    o
}

fn options_for_cli(folder: &Path, cli: &J) -> Options {
    let mut env = env_map(&cli["os_env"]);
    env.extend(env_map(&cli["env"]));
    let cwd = match cli["working_dir"].as_str() {
        Some(w) if w.starts_with('/') => PathBuf::from(w),
        Some(w) => folder.join(w),
        None => folder.to_path_buf(),
    };
    let mut o = Options::new(folder, env);
    if cli["working_dir"].is_string() {
        o.project_directory = Some(cwd.clone());
        o.cwd = cwd;
    }
    o.files = cli["files"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| folder.join(f.as_str().unwrap()))
        .collect();
    if let Some(n) = cli["name_option"].as_str() {
        o.project_name = Some(n.to_string());
    }
    o
}

fn project_json(p: &Project) -> J {
    let mut j = serde_json::to_value(p).unwrap();
    j["@environment"] = serde_json::to_value(&p.environment).unwrap();
    j
}

/// Walks `services.foo.ports[0].target`; keys may not contain dots.
fn lookup<'a>(root: &'a J, path: &str) -> Option<&'a J> {
    let mut cur = root;
    for part in path.split('.') {
        let (key, idx) = match part.find('[') {
            Some(i) => (&part[..i], Some(&part[i..])),
            None => (part, None),
        };
        if !key.is_empty() {
            cur = cur.get(key)?;
        }
        if let Some(idx) = idx {
            for n in idx.split(['[', ']']).filter(|s| !s.is_empty()) {
                cur = cur.get(n.parse::<usize>().ok()?)?;
            }
        }
    }
    Some(cur)
}

fn is_zero(v: &J) -> bool {
    match v {
        J::Null => true,
        J::Bool(b) => !b,
        J::Number(n) => n.as_f64() == Some(0.0),
        J::String(s) => s.is_empty(),
        J::Array(a) => a.is_empty(),
        J::Object(o) => o.is_empty(),
    }
}

fn to_ns(v: &J) -> Option<f64> {
    match v {
        J::String(s) => rstack_compose::units::Duration::parse(s)
            .ok()
            .map(|d| d.0 as f64),
        J::Number(n) => n.as_f64(),
        _ => None,
    }
}

fn to_bytes(v: &J) -> Option<f64> {
    match v {
        J::String(s) => rstack_compose::units::Bytes::parse(s)
            .ok()
            .map(|d| d.0 as f64),
        J::Number(n) => n.as_f64(),
        _ => None,
    }
}

/// Deep equality with compose-go's normalisation: absent equals the Go zero
/// value, durations/sizes compared as numbers, float32 compared loosely.
fn same(got: Option<&J>, exp: &J, unit: Option<&str>, key: &str) -> bool {
    let Some(got) = got else { return is_zero(exp) };
    let unit = unit.or(match key {
        "interval" | "timeout" | "start_period" | "start_interval" | "stop_grace_period"
        | "delay" | "monitor" | "window" => Some("ns"),
        "memory" | "mem_limit" | "mem_reservation" | "memswap_limit" | "shm_size" | "size" => {
            Some("bytes")
        }
        _ => None,
    });
    // Go's UlimitsConfig{Single: n} is the plain number `n` in YAML.
    if let (J::Number(_), Some(single)) = (
        got,
        exp.as_object()
            .filter(|o| o.len() == 1)
            .and_then(|o| o.get("single")),
    ) {
        return got == single;
    }
    if key == "mode"
        && let (J::String(g), J::Number(e)) = (got, exp)
    {
        return u32::from_str_radix(g, 8).ok().map(u64::from) == e.as_u64();
    }
    match (got, exp) {
        (_, J::Number(e)) if unit == Some("ns") => to_ns(got) == e.as_f64(),
        (_, J::Number(e)) if unit == Some("bytes") => to_bytes(got) == e.as_f64(),
        (J::Number(g), J::Number(e)) => {
            let (g, e) = (g.as_f64().unwrap_or(0.0), e.as_f64().unwrap_or(0.0));
            (g - e).abs() <= 1e-6 * e.abs().max(1.0)
        }
        (J::Object(g), J::Object(e)) => {
            e.iter().all(|(k, v)| same(g.get(k), v, None, k))
                && g.iter().all(|(k, v)| e.contains_key(k) || is_zero(v))
        }
        (J::Array(g), J::Array(e)) => {
            g.len() == e.len() && g.iter().zip(e).all(|(g, e)| same(Some(g), e, unit, key))
        }
        _ => got == exp || (is_zero(got) && is_zero(exp)),
    }
}

fn subst_wd(v: &J, wd: &str) -> J {
    match v {
        J::String(s) => J::String(s.replace("${WORKING_DIR}", wd)),
        J::Array(a) => J::Array(a.iter().map(|x| subst_wd(x, wd)).collect()),
        J::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), subst_wd(v, wd)))
            .collect(),
        other => other.clone(),
    }
}

fn check_assertion(p: &J, a: &J, wd: &str) -> Result<(), String> {
    let path = a["path"].as_str().unwrap();
    let got = lookup(p, path);
    let ok = if let Some(exp) = a.get("equals") {
        let key = path.rsplit('.').next().unwrap_or("");
        same(got, &subst_wd(exp, wd), a["unit"].as_str(), key)
    } else if let Some(n) = a["length"].as_u64() {
        match got {
            Some(J::Array(x)) => x.len() as u64 == n,
            Some(J::Object(x)) => x.len() as u64 == n,
            None => n == 0,
            _ => false,
        }
    } else if a["absent"] == true {
        got.is_none()
    } else if a["present"] == true {
        got.is_some()
    } else if a["null_or_absent"] == true {
        got.is_none_or(J::is_null)
    } else if let Some(ext) = a["extensions"].as_object() {
        let g: serde_json::Map<String, J> = got
            .and_then(J::as_object)
            .map(|o| {
                o.iter()
                    .filter(|(k, _)| k.starts_with("x-"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default();
        &g == ext
    } else {
        return Err(format!("unknown assertion {a}"));
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{path}: got {}, want {a}",
            got.map_or("nothing".into(), J::to_string)
        ))
    }
}

/// rstack puts `file:line:col: ` before a message; compose-go does not.
fn strip_pos(msg: &str) -> &str {
    let Some((head, rest)) = msg.split_once(": ") else {
        return msg;
    };
    let mut parts = head.rsplit(':');
    let col = parts.next().is_some_and(|c| c.parse::<u32>().is_ok());
    let line = parts.next().is_some_and(|c| c.parse::<u32>().is_ok());
    if col && line { rest } else { msg }
}

fn error_ok(msg: &str, e: &J) -> bool {
    let text = e["text"].as_str().unwrap_or_default();
    let msg = strip_pos(msg);
    match e["match"].as_str() {
        Some("exact") => msg == text,
        Some("prefix") => msg.starts_with(text),
        _ => msg.contains(text),
    }
}

fn run_one(
    folder: &Path,
    opts: Options,
    assertions: Option<&J>,
    error: Option<&J>,
    expected_name: Option<&J>,
) -> Result<(), String> {
    let wd = folder.display().to_string();
    match (load(&opts), error) {
        (Err(e), Some(exp)) => {
            let msg = crate::chain(&e);
            if error_ok(&msg, exp) {
                Ok(())
            } else {
                Err(format!("error {msg:?}, want {exp}"))
            }
        }
        (Err(e), None) => Err(format!("load failed: {e}")),
        (Ok(_), Some(exp)) => Err(format!("loaded, want error {exp}")),
        (Ok(p), None) => {
            let j = project_json(&p);
            if let Some(exp) = expected_name
                && j["name"] != exp["name"]
            {
                return Err(format!("name {}, want {}", j["name"], exp["name"]));
            }
            for a in assertions.and_then(J::as_array).into_iter().flatten() {
                check_assertion(&j, a, &wd)?;
            }
            Ok(())
        }
    }
}

#[test]
fn loader_cases() {
    let index = read_json("loader/index.json");
    let cases = index["cases"].as_array().unwrap();
    let mut total = 0;
    let mut failures = Vec::new();
    for case in cases {
        let name = case["folder"].as_str().unwrap();
        let folder = data_dir().join("loader").join(name);
        let expected = folder.join("expected.json");
        if !expected.exists() {
            total += 1;
            let input = read_json(&format!("loader/{name}/input.json"));
            let text = std::fs::read_to_string(folder.join("error.txt")).unwrap();
            let mut err = input["error"].clone();
            err["text"] = json!(text.trim_end_matches('\n'));
            let opts = options_for(&folder, &input["input"]);
            if let Err(why) = run_one(&folder, opts, None, Some(&err), None) {
                failures.push(format!("{name}: {why}"));
            }
            continue;
        }
        let e = read_json(&format!("loader/{name}/expected.json"));
        if let Some(scenarios) = e["scenarios"].as_array() {
            for s in scenarios {
                total += 1;
                let sname = format!("{name}/{}", s["name"].as_str().unwrap_or(""));
                let opts = if s["cli"].is_object() {
                    options_for_cli(&folder, &s["cli"])
                } else {
                    options_for(&folder, &s["input"])
                };
                let err = s.get("error").filter(|e| !e.is_null());
                if let Err(why) =
                    run_one(&folder, opts, s.get("assertions"), err, s.get("expected"))
                {
                    failures.push(format!("{sname}: {why}"));
                }
            }
        } else {
            total += 1;
            let opts = options_for(&folder, &e["input"]);
            if let Err(why) = run_one(&folder, opts, e.get("assertions"), None, None) {
                failures.push(format!("{name}: {why}"));
            }
        }
    }
    report("loader (cases and scenarios)", total, &failures, KNOWN_GAPS);
}
