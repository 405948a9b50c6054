//! Kubernetes objects as JSON values, and the metadata every object of a
//! project shares: its namespace and the `app.kubernetes.io` labels.

use serde_json::{Map, Value, json};

use crate::names;

/// One manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub kind: String,
    pub name: String,
    /// What it was made from (`services.api`, `volumes.data`), for errors.
    pub origin: String,
    pub value: Value,
}

/// The order `kubectl apply -f DIR` should meet objects in: what others
/// refer to first.
pub const KIND_ORDER: &[&str] = &[
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Service",
    "Deployment",
    "Job",
    "HorizontalPodAutoscaler",
    "NetworkPolicy",
];

/// The labels of the project and its namespace.
#[derive(Debug, Clone)]
pub struct Scope {
    pub namespace: String,
    /// The project name as a label value.
    pub part_of: String,
}

/// Label key of the service a pod runs.
pub const NAME_LABEL: &str = "app.kubernetes.io/name";
/// Label key of the project.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";

impl Scope {
    pub fn new(project: &str, namespace: Option<&str>) -> Scope {
        Scope {
            namespace: namespace
                .map(str::to_owned)
                .unwrap_or_else(|| names::dns_label(project, names::LABEL_MAX)),
            part_of: names::label_value(project),
        }
    }

    /// The labels that select a service's pods.
    pub fn selector(&self, service: &str) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(NAME_LABEL.into(), json!(service));
        m.insert(PART_OF_LABEL.into(), json!(self.part_of));
        m
    }

    /// The labels of every object of the project.
    pub fn project_labels(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(PART_OF_LABEL.into(), json!(self.part_of));
        m
    }

    /// `metadata` of a namespaced object: name, namespace, labels and,
    /// when there are any, annotations.
    pub fn metadata(
        &self,
        name: &str,
        labels: Map<String, Value>,
        annotations: Map<String, Value>,
    ) -> Value {
        let mut m = Map::new();
        m.insert("name".into(), json!(name));
        m.insert("namespace".into(), json!(self.namespace));
        m.insert("labels".into(), Value::Object(labels));
        if !annotations.is_empty() {
            m.insert("annotations".into(), Value::Object(annotations));
        }
        Value::Object(m)
    }

    /// A namespaced object of the project.
    pub fn object(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        origin: &str,
        labels: Map<String, Value>,
        body: Map<String, Value>,
    ) -> Object {
        self.annotated(api_version, kind, name, origin, labels, Map::new(), body)
    }

    /// Like [`Scope::object`], with annotations.
    #[allow(clippy::too_many_arguments)]
    pub fn annotated(
        &self,
        api_version: &str,
        kind: &str,
        name: &str,
        origin: &str,
        labels: Map<String, Value>,
        annotations: Map<String, Value>,
        body: Map<String, Value>,
    ) -> Object {
        let mut v = Map::new();
        v.insert("apiVersion".into(), json!(api_version));
        v.insert("kind".into(), json!(kind));
        v.insert("metadata".into(), self.metadata(name, labels, annotations));
        v.extend(body);
        Object {
            kind: kind.to_owned(),
            name: name.to_owned(),
            origin: origin.to_owned(),
            value: Value::Object(v),
        }
    }

    /// The Namespace itself.
    pub fn namespace_object(&self) -> Object {
        Object {
            kind: "Namespace".into(),
            name: self.namespace.clone(),
            origin: "the project".into(),
            value: json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": self.namespace, "labels": self.project_labels()},
            }),
        }
    }
}

/// One service being mapped: its Compose and Kubernetes names, its model
/// and its `x-kubernetes`.
#[derive(Debug, Clone, Copy)]
pub struct Svc<'a> {
    pub name: &'a str,
    pub kname: &'a str,
    pub svc: &'a rstack_compose::model::Service,
    pub ext: &'a crate::extension::ServiceExt,
}

/// What a service's pod gets from its volumes, secrets, configs and
/// environment, and the objects made for them.
#[derive(Debug, Default)]
pub struct PodParts {
    /// `spec.volumes` of the pod.
    pub volumes: Vec<Value>,
    /// `volumeMounts` of the container.
    pub mounts: Vec<Value>,
    /// `envFrom` of the container.
    pub env_from: Vec<Value>,
    /// ConfigMaps and Secrets made for this service alone.
    pub objects: Vec<Object>,
    /// It mounts a PersistentVolumeClaim that one node at a time can use.
    pub single_node_claim: bool,
}

impl PodParts {
    /// Adds a pod volume named after `name` (made unique in the pod) and
    /// its mount; `mount` gets the name.
    pub fn add(
        &mut self,
        name: &str,
        mut volume: Map<String, Value>,
        mut mount: Map<String, Value>,
    ) {
        let base = names::dns_label(name, names::LABEL_MAX - 3);
        let taken = |n: &str| self.volumes.iter().any(|v| v["name"] == n);
        let mut unique = base.clone();
        let mut i = 2;
        while taken(&unique) {
            unique = format!("{base}-{i}");
            i += 1;
        }
        let mut v = Map::new();
        v.insert("name".into(), json!(unique));
        v.append(&mut volume);
        self.volumes.push(Value::Object(v));
        let mut m = Map::new();
        m.insert("name".into(), json!(unique));
        m.append(&mut mount);
        self.mounts.push(Value::Object(m));
    }
}

/// A JSON object from pairs, leaving out null values and empty arrays and
/// objects (Kubernetes' `omitempty`).
pub fn obj<const N: usize>(pairs: [(&str, Value); N]) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in pairs {
        let empty = match &v {
            Value::Null => true,
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if !empty {
            m.insert(k.to_owned(), v);
        }
    }
    m
}

/// A string map as a JSON object.
pub fn string_map<'a>(
    items: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Map<String, Value> {
    items
        .into_iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_objects_carry_the_project() {
        let s = Scope::new("my_app", None);
        assert_eq!(s.namespace, "my-app");
        let o = s.object(
            "v1",
            "ConfigMap",
            "api-env",
            "services.api",
            s.project_labels(),
            obj([("data", json!({"A": "1"}))]),
        );
        assert_eq!(
            o.value,
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "api-env", "namespace": "my-app",
                                "labels": {"app.kubernetes.io/part-of": "my_app"}},
                   "data": {"A": "1"}})
        );
        assert_eq!(Scope::new("x", Some("prod")).namespace, "prod");
    }

    #[test]
    fn pod_volume_names_are_unique() {
        let mut p = PodParts::default();
        p.add(
            "data",
            obj([("emptyDir", json!({}))]),
            obj([("mountPath", json!("/a"))]),
        );
        p.add(
            "data",
            obj([("emptyDir", json!({}))]),
            obj([("mountPath", json!("/b"))]),
        );
        assert_eq!(p.volumes[1]["name"], "data-2");
        assert_eq!(p.mounts[1], json!({"name": "data-2", "mountPath": "/b"}));
    }

    #[test]
    fn empty_values_are_left_out() {
        let m = obj([
            ("a", Value::Null),
            ("b", json!([])),
            ("c", json!({})),
            ("d", json!(0)),
        ]);
        assert_eq!(Value::Object(m), json!({"d": 0}));
    }
}
