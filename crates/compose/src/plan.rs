//! The dependency planner: which services can start together, in which
//! order, and the reverse for stopping. Built from `depends_on`; an
//! optional dependency (`required: false`) that is not part of the project
//! is skipped, a required one that is missing is an error.

use indexmap::{IndexMap, IndexSet};

use crate::model::{DependencyCondition, Service};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("dependency cycle detected: {}", cycle.join(" -> "))]
    Cycle { cycle: Vec<String> },
    #[error("service {service:?} depends on undefined service {dependency:?}")]
    Missing { service: String, dependency: String },
}

/// One edge of the graph: `service` waits for `dependency` with `condition`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    pub dependency: String,
    pub condition: DependencyCondition,
    pub required: bool,
    pub restart: bool,
}

/// Start layers (each layer may start in parallel once the previous layers
/// are ready) and the stop order (the reverse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub start_layers: Vec<Vec<String>>,
    /// What each service waits for before it starts.
    pub waits: IndexMap<String, Vec<Wait>>,
}

impl Plan {
    pub fn new(services: &IndexMap<String, Service>) -> Result<Plan, Error> {
        let mut waits: IndexMap<String, Vec<Wait>> = IndexMap::new();
        for (name, svc) in services {
            let mut w = Vec::new();
            for (dep, d) in &svc.depends_on {
                if !services.contains_key(dep) {
                    if d.required {
                        return Err(Error::Missing {
                            service: name.clone(),
                            dependency: dep.clone(),
                        });
                    }
                    continue;
                }
                w.push(Wait {
                    dependency: dep.clone(),
                    condition: d.condition(),
                    required: d.required,
                    restart: d.restart.unwrap_or(false),
                });
            }
            waits.insert(name.clone(), w);
        }
        if let Some(cycle) = find_cycle(&waits) {
            return Err(Error::Cycle { cycle });
        }
        let mut done: IndexSet<String> = IndexSet::new();
        let mut layers = Vec::new();
        while done.len() < waits.len() {
            let layer: Vec<String> = waits
                .iter()
                .filter(|(n, w)| {
                    !done.contains(*n) && w.iter().all(|x| done.contains(&x.dependency))
                })
                .map(|(n, _)| n.clone())
                .collect();
            if layer.is_empty() {
                // Unreachable: cycles were rejected above.
                break;
            }
            done.extend(layer.iter().cloned());
            layers.push(layer);
        }
        Ok(Plan {
            start_layers: layers,
            waits,
        })
    }

    /// The start order flattened.
    pub fn start_order(&self) -> Vec<String> {
        self.start_layers.iter().flatten().cloned().collect()
    }

    /// Stop layers: the start layers reversed (dependents stop first).
    pub fn stop_layers(&self) -> Vec<Vec<String>> {
        self.start_layers.iter().rev().cloned().collect()
    }

    /// The stop order flattened.
    pub fn stop_order(&self) -> Vec<String> {
        self.stop_layers().into_iter().flatten().collect()
    }

    /// The services a set of services needs, transitively, themselves included,
    /// in start order (for `up web`).
    pub fn with_dependencies(&self, names: &[String]) -> Vec<String> {
        let mut need: IndexSet<String> = names.iter().cloned().collect();
        let mut i = 0;
        while i < need.len() {
            let n = need[i].clone();
            for w in self.waits.get(&n).into_iter().flatten() {
                need.insert(w.dependency.clone());
            }
            i += 1;
        }
        self.start_order()
            .into_iter()
            .filter(|s| need.contains(s))
            .collect()
    }
}

/// Finds one cycle, printed starting and ending with the same service.
pub fn find_cycle(waits: &IndexMap<String, Vec<Wait>>) -> Option<Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut marks: IndexMap<&str, Mark> = waits.keys().map(|k| (k.as_str(), Mark::New)).collect();
    fn visit<'a>(
        n: &'a str,
        waits: &'a IndexMap<String, Vec<Wait>>,
        marks: &mut IndexMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        marks.insert(n, Mark::Active);
        stack.push(n);
        for w in waits.get(n).into_iter().flatten() {
            let d = w.dependency.as_str();
            match marks.get(d).copied() {
                Some(Mark::Active) => {
                    let start = stack.iter().position(|s| *s == d).unwrap_or(0);
                    let mut cycle: Vec<String> =
                        stack[start..].iter().map(|s| s.to_string()).collect();
                    cycle.push(d.to_string());
                    return Some(cycle);
                }
                Some(Mark::New) => {
                    if let Some(c) = visit(d, waits, marks, stack) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        stack.pop();
        marks.insert(n, Mark::Done);
        None
    }
    let keys: Vec<&str> = waits.keys().map(String::as_str).collect();
    for k in keys {
        if marks.get(k) == Some(&Mark::New) {
            let mut stack = Vec::new();
            if let Some(c) = visit(k, waits, &mut marks, &mut stack) {
                return Some(c);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Dependency;

    fn svc(deps: &[(&str, bool)]) -> Service {
        let mut s = Service::default();
        for (d, required) in deps {
            s.depends_on.insert(
                d.to_string(),
                Dependency {
                    condition: "service_started".into(),
                    required: *required,
                    ..Dependency::default()
                },
            );
        }
        s
    }

    #[test]
    fn layers_and_stop_order() {
        let mut s = IndexMap::new();
        s.insert("web".to_string(), svc(&[("api", true)]));
        s.insert("api".to_string(), svc(&[("db", true), ("cache", true)]));
        s.insert("db".to_string(), svc(&[]));
        s.insert("cache".to_string(), svc(&[("gone", false)]));
        let p = Plan::new(&s).unwrap();
        assert_eq!(
            p.start_layers,
            vec![
                vec!["db".to_string(), "cache".to_string()],
                vec!["api".to_string()],
                vec!["web".to_string()]
            ]
        );
        assert_eq!(p.stop_order(), vec!["web", "api", "db", "cache"]);
        assert_eq!(
            p.with_dependencies(&["api".to_string()]),
            vec!["db", "cache", "api"]
        );
    }

    #[test]
    fn cycle_is_printed() {
        let mut s = IndexMap::new();
        s.insert("a".to_string(), svc(&[("b", true)]));
        s.insert("b".to_string(), svc(&[("c", true)]));
        s.insert("c".to_string(), svc(&[("a", true)]));
        let e = Plan::new(&s).unwrap_err();
        assert_eq!(e.to_string(), "dependency cycle detected: a -> b -> c -> a");
    }

    #[test]
    fn missing_required_dependency() {
        let mut s = IndexMap::new();
        s.insert("a".to_string(), svc(&[("nope", true)]));
        assert!(matches!(Plan::new(&s), Err(Error::Missing { .. })));
    }
}
