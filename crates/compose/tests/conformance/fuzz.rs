//! Mutation fuzzing of the loader: every input must give a project or an
//! error, never a panic. Deterministic (fixed seeds) so a failure replays;
//! set `RSTACK_FUZZ_ITERS` for a longer run.

use std::panic::{AssertUnwindSafe, catch_unwind};

use indexmap::IndexMap;
use rstack_compose::{Options, load, yaml};

use crate::data_dir;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&str] = &[
    "services:",
    "\n",
    "  ",
    "- ",
    ": ",
    "image: x",
    "ports:",
    "\"80:80\"",
    "${A:-b}",
    "${",
    "$$",
    "&a ",
    "*a",
    "<<: *a",
    "!reset ",
    "!override ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "'",
    "\"",
    "#",
    "depends_on:",
    "extends:",
    "volumes:",
    "./d:/d:ro",
    "networks:",
    "environment:",
    "K=V",
    "null",
    "~",
    "0x1F",
    "1.5",
    "true",
    "include:",
    "profiles: [p]",
    "build: .",
    "healthcheck:",
    "1m30s",
    "512M",
    "x-a:",
    "---\n",
    "|\n",
    ">-\n",
    "\t",
    "é",
];

fn corpus() -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![data_dir()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "yml" || x == "yaml") {
                out.push(std::fs::read_to_string(&p).unwrap_or_default());
            }
        }
    }
    out.sort();
    out
}

fn mutate(rng: &mut Rng, input: &str) -> String {
    let mut s: Vec<char> = input.chars().collect();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(s.len() + 1);
        match rng.below(4) {
            0 if !s.is_empty() => {
                let end = (at + rng.below(8)).min(s.len());
                s.drain(at.min(end)..end);
            }
            1 => {
                let t = TOKENS[rng.below(TOKENS.len())];
                for (i, c) in t.chars().enumerate() {
                    s.insert((at + i).min(s.len()), c);
                }
            }
            2 if !s.is_empty() => {
                let i = rng.below(s.len());
                let set = b" :-[]{}\n\"'$!&*#";
                s[i] = char::from(set[rng.below(set.len())]);
            }
            _ => {
                let from = rng.below(s.len() + 1);
                let len = rng.below(20);
                let piece: Vec<char> = s.iter().skip(from).take(len).copied().collect();
                for (i, c) in piece.into_iter().enumerate() {
                    s.insert((at + i).min(s.len()), c);
                }
            }
        }
    }
    s.into_iter().collect()
}

fn check(input: &str, dir: &std::path::Path) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let _ = yaml::parse(input, "fuzz.yaml");
        let mut o = Options::new(dir, IndexMap::new());
        o.files = vec!["-".into()];
        o.stdin = Some(input.to_string());
        o.project_name = Some("fuzz".into());
        let _ = load(&o);
    }));
    assert!(result.is_ok(), "the loader panicked on input:\n{input:?}");
}

#[test]
fn loader_never_panics() {
    let iters: usize = std::env::var("RSTACK_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let corpus = corpus();
    assert!(!corpus.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for seed in &corpus {
        check(seed, dir.path());
    }
    for i in 0..iters {
        let base = &corpus[i % corpus.len()];
        let input = mutate(&mut rng, base);
        check(&input, dir.path());
        // Token soup too, for shapes no seed has.
        let soup: String = (0..rng.below(40))
            .map(|_| TOKENS[rng.below(TOKENS.len())])
            .collect();
        check(&soup, dir.path());
    }
    println!(
        "fuzz: {} seeds, {} mutated inputs and {} token soups, no panic",
        corpus.len(),
        iters,
        iters
    );
}
