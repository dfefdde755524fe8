//! What the page draws, as one JSON document: the graph's services and edges, placed, and
//! whether the dashboard still watches the cluster. Pure: built from the read model.

use std::collections::BTreeSet;

use serde::Serialize;

use super::layout::{NODE_HEIGHT, NODE_WIDTH, layout};
use crate::graph::ObjectKey;
use crate::view::{EdgeAdmission, EdgeKind, GraphView, Health, ReleaseView};

/// One message of the page's stream.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot<'a> {
    pub version: u64,
    pub cluster: &'a Connection,
    pub width: i64,
    pub height: i64,
    pub nodes: Vec<NodeJson<'a>>,
    pub edges: Vec<EdgeJson<'a>>,
}

/// Whether the dashboard's watch on the API server is up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Connection {
    pub connected: bool,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeJson<'a> {
    pub id: String,
    pub namespace: &'a str,
    pub name: &'a str,
    pub ghost: bool,
    pub health: &'static str,
    pub reason: &'a str,
    pub message: &'a str,
    pub class: Option<&'a str>,
    pub image: Option<&'a str>,
    pub replicas: Replicas,
    pub release: Option<&'a ReleaseView>,
    pub x: i64,
    pub y: i64,
    pub w: i64,
    pub h: i64,
}

#[derive(Clone, Copy, Debug, Serialize)]
pub struct Replicas {
    pub ready: i32,
    pub desired: i32,
}

#[derive(Clone, Debug, Serialize)]
pub struct EdgeJson<'a> {
    pub from: String,
    pub to: String,
    /// `dependsOn`, or `backing` (a backing service the callee runs).
    pub kind: &'static str,
    /// The backing service, `name (type)`; empty for `dependsOn`.
    pub label: &'a str,
    pub admission: EdgeAdmission,
    pub message: &'a str,
    /// A polyline, from the caller's right side to the callee's left side.
    pub points: Vec<[i64; 2]>,
}

/// The snapshot of `graph`, laid out.
pub fn snapshot<'a>(graph: &'a GraphView, cluster: &'a Connection, version: u64) -> Snapshot<'a> {
    let keys: BTreeSet<ObjectKey> = graph
        .services
        .iter()
        .map(|s| s.key.clone())
        .chain(graph.missing.iter().cloned())
        .collect();
    let edges: Vec<(ObjectKey, ObjectKey)> = graph
        .edges
        .iter()
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let placed = layout(&keys, &edges);
    let at = |key: &ObjectKey| {
        placed
            .places
            .get(key)
            .copied()
            .unwrap_or(super::layout::Place { x: 0, y: 0 })
    };
    let mut nodes: Vec<NodeJson<'a>> = graph
        .services
        .iter()
        .map(|s| {
            let place = at(&s.key);
            NodeJson {
                id: s.key.to_string(),
                namespace: &s.key.namespace,
                name: &s.key.name,
                ghost: false,
                health: s.health.as_str(),
                reason: &s.reason,
                message: &s.message,
                class: s.class.as_deref(),
                image: Some(&s.image),
                replicas: Replicas {
                    ready: s.ready_replicas,
                    desired: s.desired_replicas,
                },
                release: s.release.as_ref(),
                x: place.x,
                y: place.y,
                w: NODE_WIDTH,
                h: NODE_HEIGHT,
            }
        })
        .collect();
    nodes.extend(graph.missing.iter().map(|key| {
        let place = at(key);
        NodeJson {
            id: key.to_string(),
            namespace: &key.namespace,
            name: &key.name,
            ghost: true,
            health: Health::Missing.as_str(),
            reason: "NotFound",
            message: "named in a dependsOn, but no such Microservice",
            class: None,
            image: None,
            replicas: Replicas {
                ready: 0,
                desired: 0,
            },
            release: None,
            x: place.x,
            y: place.y,
            w: NODE_WIDTH,
            h: NODE_HEIGHT,
        }
    }));
    let edges = graph
        .edges
        .iter()
        .filter_map(|e| {
            let (kind, label) = match &e.kind {
                EdgeKind::DependsOn => ("dependsOn", ""),
                EdgeKind::Backing(label) => ("backing", label.as_str()),
            };
            Some(EdgeJson {
                from: e.from.to_string(),
                to: e.to.to_string(),
                kind,
                label,
                admission: e.admission,
                message: &e.message,
                points: placed.route(&e.from, &e.to)?,
            })
        })
        .collect();
    Snapshot {
        version,
        cluster,
        width: placed.width.max(NODE_WIDTH),
        height: placed.height.max(NODE_HEIGHT),
        nodes,
        edges,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Microservice;
    use crate::graph::Admission;

    #[test]
    fn the_shop_with_a_missing_dependency_has_a_ghost_and_a_dashed_edge() {
        let docs: Vec<Microservice> = [
            "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: storefront, namespace: shop}, spec: {image: 'web:1', dependsOn: [{name: orders}, {name: recommendations}]}, status: {observedGeneration: 1, replicas: 2, readyReplicas: 2, className: standard, conditions: [{lastTransitionTime: '2026-12-08T00:00:00Z', type: Ready, status: 'True', reason: PodsReady, message: '2/2 pods ready'}]}}",
            "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: orders, namespace: shop}, spec: {image: 'orders:1'}}",
        ]
        .iter()
        .map(|y| serde_saphyr::from_str(y).unwrap())
        .collect();
        let graph = GraphView::of(&docs, &Admission::default());
        let connection = Connection {
            connected: true,
            message: String::new(),
        };
        let json = serde_json::to_value(snapshot(&graph, &connection, 7)).unwrap();
        assert_eq!(json["version"], 7);
        let nodes = json["nodes"].as_array().unwrap();
        assert_eq!(nodes.len(), 3);
        let ghost = nodes.iter().find(|n| n["ghost"] == true).unwrap();
        assert_eq!(ghost["id"], "shop/recommendations");
        assert_eq!(ghost["health"], "Missing");
        let storefront = nodes.iter().find(|n| n["name"] == "storefront").unwrap();
        assert_eq!(storefront["replicas"]["ready"], 2);
        assert_eq!(storefront["class"], "standard");
        let missing = json["edges"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["to"] == "shop/recommendations")
            .unwrap();
        assert_eq!(missing["admission"], "missing");
        assert!(missing["points"].as_array().unwrap().len() >= 4);
    }
}
