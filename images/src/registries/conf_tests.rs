use super::*;

fn p(text: &str) -> Result<Conf, Error> {
    parse(Path::new("/c/registries.conf"), text)
}

fn err(text: &str) -> String {
    rstack_sys::chain::chain(&p(text).unwrap_err())
}

#[test]
fn version_2_fields() {
    let c = p(r#"
unqualified-search-registries = ["docker.io", "quay.io"]
short-name-mode = "enforcing"
credential-helpers = ["containers-auth.json"]

[[registry]]
prefix = "docker.io"
location = "docker.io"
mirror-by-digest-only = true
[[registry.mirror]]
location = "m.lan"
insecure = true

[[registry]]
prefix = "quay.io"
blocked = true

[aliases]
"app" = "quay.io/org/app"
"#)
    .unwrap();
    assert_eq!(c.unqualified_search, ["docker.io", "quay.io"]);
    assert_eq!(c.short_name_mode.as_deref(), Some("enforcing"));
    assert_eq!(c.rules.len(), 2);
    assert_eq!(
        c.rules[0].mirrors,
        [RuleMirror {
            location: "m.lan".into(),
            insecure: true,
            pull_from_mirror: PullFromMirror::DigestOnly
        }]
    );
    assert_eq!(c.rules[1].prefix, "quay.io");
    assert_eq!(
        c.rules[1].location, "quay.io",
        "location defaults to the prefix"
    );
    assert!(c.rules[1].blocked);
    assert_eq!(c.aliases["app"].target, "quay.io/org/app");
}

#[test]
fn version_1_becomes_rules() {
    let c = p(r#"
[registries.search]
registries = ["docker.io"]
[registries.insecure]
registries = ["lan:5000"]
[registries.block]
registries = ["bad.example.com", "lan:5000"]
"#)
    .unwrap();
    let summary: Vec<(&str, bool, bool)> = c
        .rules
        .iter()
        .map(|r| (r.prefix.as_str(), r.insecure, r.blocked))
        .collect();
    assert_eq!(
        summary,
        [
            ("lan:5000", true, true),
            ("bad.example.com", false, true),
            ("docker.io", false, false)
        ]
    );
}

#[test]
fn bad_files_name_the_file_and_key() {
    for (text, needles) in [
        ("[[registry]\n", &["/c/registries.conf", "TOML"][..]),
        (
            "[[registry]]\nlocation = \"a\"\nmirorr = []\n",
            &["/c/registries.conf", "mirorr"],
        ),
        ("[[registry]]\ninsecure = true\n", &["registry[0].location"]),
        (
            "[[registry]]\nlocation = \"https://x\"\n",
            &["registry[0].location", "scheme"],
        ),
        (
            "[[registry]]\nlocation = \"a\"\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"sometimes\"\n",
            &["registry[0].mirror[0].pull-from-mirror", "sometimes"],
        ),
        (
            "[[registry]]\nlocation = \"a\"\nmirror-by-digest-only = true\n[[registry.mirror]]\nlocation = \"m\"\npull-from-mirror = \"tag-only\"\n",
            &["mirror-by-digest-only"],
        ),
        (
            "[[registry]]\nlocation = \"a\"\n[[registry]]\nprefix = \"a\"\nlocation = \"b\"\n",
            &["registry[1].prefix", "more than once"],
        ),
        (
            "[[registry]]\nprefix = \"*.x.com\"\nlocation = \"y.com\"\n",
            &["wildcard"],
        ),
        (
            "[aliases]\n\"quay.io/x\" = \"quay.io/x\"\n",
            &["short name"],
        ),
        ("[aliases]\n\"x\" = \"x\"\n", &["must name its registry"]),
        ("[aliases]\n\"x\" = \"quay.io/x:1\"\n", &["tag or digest"]),
        ("short-name-mode = \"maybe\"\n", &["short-name-mode"]),
        (
            "unqualified-search-registries = [\"a\"]\n[registries.search]\nregistries = []\n",
            &["version 1"],
        ),
    ] {
        let e = err(text);
        for n in needles {
            assert!(e.contains(n), "{text:?}: {n:?} not in {e}");
        }
    }
}

#[test]
fn drop_ins_merge_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let main = tmp.path().join("registries.conf");
    std::fs::write(
        &main,
        r#"
unqualified-search-registries = ["docker.io"]
[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "old.lan"
[[registry]]
location = "quay.io"
[aliases]
"a" = "quay.io/a"
"b" = "quay.io/b"
"#,
    )
    .unwrap();
    let dir = drop_in_dir(&main);
    assert_eq!(dir, tmp.path().join("registries.conf.d"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("20-late.conf"),
        "[[registry]]\nlocation = \"docker.io\"\n[[registry.mirror]]\nlocation = \"new.lan\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("10-early.conf"),
        "unqualified-search-registries = [\"quay.io\"]\n[aliases]\n\"a\" = \"\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("ignored.txt"), "not toml [").unwrap();
    let c = load(&main, true).unwrap();
    assert_eq!(c.files.len(), 3);
    assert_eq!(c.unqualified_search, ["quay.io"]);
    assert_eq!(c.rules.len(), 2);
    assert_eq!(c.rules[0].mirrors[0].location, "new.lan");
    assert!(c.rules[0].file.ends_with("20-late.conf"));
    assert!(!c.aliases.contains_key("a"));
    assert!(c.aliases.contains_key("b"));

    let missing = tmp.path().join("nope.conf");
    assert_eq!(load(&missing, false).unwrap(), Conf::default());
    let e = load(&missing, true).unwrap_err().to_string();
    assert!(e.contains("nope.conf"), "{e}");
}
