//! The desired children of one Microservice, as the JSON objects server-side apply sends.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ChildKind;

/// One desired child.
#[derive(Clone, Debug, PartialEq)]
pub struct Child {
    pub kind: &'static ChildKind,
    /// The object to apply, `apiVersion` and `kind` set.
    pub object: Value,
    /// Left as it is in the cluster (neither applied nor pruned): the plan holds the
    /// rollout until every dependency exists.
    pub held: bool,
}

impl Child {
    pub fn new(kind: &'static ChildKind, object: Value) -> Self {
        Child {
            kind,
            object,
            held: false,
        }
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.object["metadata"]["name"].as_str().unwrap_or_default()
    }
}

/// Every desired child of one Microservice, in apply order (that of `builders::KINDS`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Children {
    items: Vec<Child>,
}

impl From<Vec<Child>> for Children {
    fn from(items: Vec<Child>) -> Self {
        Children { items }
    }
}

impl Children {
    pub fn iter(&self) -> impl Iterator<Item = &Child> {
        self.items.iter()
    }

    /// The child of this kind, if the spec asks for one.
    pub fn get(&self, kind: &ChildKind) -> Option<&Child> {
        self.items.iter().find(|child| child.kind == kind)
    }

    /// The child of this kind decoded into its typed form (tests and benchmarks read
    /// fields this way); None when there is none or it does not decode as `K`.
    pub fn typed<K: DeserializeOwned>(&self, kind: &ChildKind) -> Option<K> {
        serde_json::from_value(self.get(kind)?.object.clone()).ok()
    }

    /// The child of this kind, to adjust (the rollout picks the Deployment's template).
    pub fn get_mut(&mut self, kind: &ChildKind) -> Option<&mut Child> {
        self.items.iter_mut().find(|child| child.kind == kind)
    }

    /// Adds `child` right after the last child of its kind (a second Deployment after
    /// the first), so the apply order stays that of the kinds.
    pub fn insert_after_kind(&mut self, child: Child) {
        let at = self
            .items
            .iter()
            .rposition(|c| c.kind == child.kind)
            .map_or(self.items.len(), |i| i + 1);
        self.items.insert(at, child);
    }

    /// Marks the child of this kind as held: the controller leaves it as it is.
    pub fn hold(&mut self, kind: &ChildKind) {
        for child in self.items.iter_mut().filter(|child| child.kind == kind) {
            child.held = true;
        }
    }

    /// The objects, in apply order.
    pub fn documents(&self) -> Vec<&Value> {
        self.items.iter().map(|child| &child.object).collect()
    }
}
