//! Rendered Kubernetes objects (a YAML stream from `helm template`), and the questions a user
//! asks of them: which objects, which pods, what each container runs and reads.

use serde::Deserialize;
use serde_norway::Value;

/// The objects of one rendering, in order.
#[derive(Debug, Clone)]
pub struct Manifests {
    /// Each document that is an object (empty documents dropped).
    pub objects: Vec<Value>,
}

/// A string field of an object by its path, e.g. `text(obj, &["metadata", "name"])`.
pub fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    get(value, path)?.as_str()
}

/// A field of an object by its path of map keys.
pub fn get<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(value, |node, key| node.get(*key))
}

/// `kind/name` of an object, as kubectl names it.
pub fn id(object: &Value) -> String {
    format!(
        "{}/{}",
        text(object, &["kind"]).unwrap_or("?"),
        text(object, &["metadata", "name"]).unwrap_or("?")
    )
}

/// A pod template found in a workload: where it is and its spec.
#[derive(Debug, Clone, Copy)]
pub struct Pod<'a> {
    /// The workload (`Deployment/rel-sink`).
    pub owner: &'a Value,
    /// The pod template (`metadata` and `spec`).
    pub template: &'a Value,
}

impl<'a> Pod<'a> {
    /// The pod's spec.
    pub fn spec(&self) -> &'a Value {
        get(self.template, &["spec"]).unwrap_or(&Value::Null)
    }

    /// Its containers.
    pub fn containers(&self) -> Vec<&'a Value> {
        seq(self.spec(), &["containers"])
    }

    /// Its volumes.
    pub fn volumes(&self) -> Vec<&'a Value> {
        seq(self.spec(), &["volumes"])
    }

    /// The workload's `kind/name`.
    pub fn id(&self) -> String {
        id(self.owner)
    }
}

/// The items of a sequence field (empty when absent).
pub fn seq<'a>(value: &'a Value, path: &[&str]) -> Vec<&'a Value> {
    get(value, path)
        .and_then(Value::as_sequence)
        .map(|items| items.iter().collect())
        .unwrap_or_default()
}

impl Manifests {
    /// Parses a YAML stream.
    pub fn parse(stream: &str) -> Self {
        let objects = serde_norway::Deserializer::from_str(stream)
            .map(|document| Value::deserialize(document).expect("helm printed YAML"))
            .filter(|value| !value.is_null())
            .collect();
        Self { objects }
    }

    /// Every object's `kind/name`, sorted.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.objects.iter().map(id).collect();
        ids.sort();
        ids
    }

    /// Objects of one kind.
    pub fn of_kind<'a>(&'a self, kind: &str) -> impl Iterator<Item = &'a Value> + use<'a> {
        let kind = kind.to_owned();
        self.objects
            .iter()
            .filter(move |object| text(object, &["kind"]) == Some(kind.as_str()))
    }

    /// The object of this kind and name, if rendered.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Value> {
        self.of_kind(kind)
            .find(|object| text(object, &["metadata", "name"]) == Some(name))
    }

    /// The object of this kind and name; panics listing what was rendered.
    pub fn get(&self, kind: &str, name: &str) -> &Value {
        self.find(kind, name)
            .unwrap_or_else(|| panic!("no {kind}/{name} among {:?}", self.ids()))
    }

    /// Every pod template: of Deployments, Jobs and CronJobs.
    pub fn pods(&self) -> Vec<Pod<'_>> {
        self.objects
            .iter()
            .filter_map(|owner| {
                let template = match text(owner, &["kind"])? {
                    "Deployment" | "Job" => get(owner, &["spec", "template"])?,
                    "CronJob" => get(owner, &["spec", "jobTemplate", "spec", "template"])?,
                    _ => return None,
                };
                Some(Pod { owner, template })
            })
            .collect()
    }

    /// The pod template of one workload.
    pub fn pod(&self, kind: &str, name: &str) -> Pod<'_> {
        let owner = self.get(kind, name);
        self.pods()
            .into_iter()
            .find(|pod| std::ptr::eq(pod.owner, owner))
            .unwrap_or_else(|| panic!("{kind}/{name} has no pod template"))
    }

    /// A key of a ConfigMap (or a Secret's `stringData`), as text.
    pub fn config_text(&self, configmap: &str, key: &str) -> &str {
        text(self.get("ConfigMap", configmap), &["data", key])
            .unwrap_or_else(|| panic!("ConfigMap/{configmap} has no key {key}"))
    }
}
