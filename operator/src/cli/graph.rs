//! `flotilla graph`: the dependency graph of Microservices, with the backing services each
//! needs, as a picture: a text tree for terminals, DOT for Graphviz and Mermaid for
//! Markdown. The drawing is pure: the command
//! brings the Microservices, from the live cluster or from files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::process::ExitCode;

use super::render::read_documents;
use super::{GraphArgs, GraphFormat, block_on, write_stdout};
use crate::api::Microservice;
use crate::client::Target;
use crate::graph::{ObjectKey, dependency_keys};

pub(super) fn command(args: GraphArgs) -> ExitCode {
    let microservices = if args.files.is_empty() {
        block_on(live_microservices(args.namespace, &args.target.target()))
    } else {
        read_documents(&args.files)
            .and_then(|docs| crate::render::parse(&docs).map_err(|e| e.to_string()))
    };
    let microservices = match microservices {
        Ok(list) => list,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let nodes: Vec<Node> = microservices.iter().map(Node::of).collect();
    write_stdout(&draw(&nodes, args.format))
}

async fn live_microservices(
    namespace: Option<String>,
    target: &Target,
) -> Result<Vec<Microservice>, String> {
    let (client, _) = crate::client::client_for(target).await?;
    let api: kube::Api<Microservice> = match namespace {
        Some(namespace) => kube::Api::namespaced(client, &namespace),
        None => kube::Api::all(client),
    };
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing Microservices: {e}"))?;
    Ok(list.items)
}

/// One Microservice in the picture.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub key: ObjectKey,
    /// `Some(ready)` from a live cluster; None when drawn from files.
    pub ready: Option<bool>,
    pub dependencies: BTreeSet<ObjectKey>,
    /// Its backing services, as `(name, type)`.
    pub backing: Vec<(String, String)>,
}

impl Node {
    pub fn of(ms: &Microservice) -> Self {
        let ready = ms.status.as_ref().map(|s| s.is_ready());
        Node {
            key: ObjectKey::of(ms),
            ready,
            dependencies: dependency_keys(ms),
            backing: ms
                .spec
                .backing_services
                .iter()
                .map(|(name, service)| (name.clone(), service.type_.clone()))
                .collect(),
        }
    }
}

fn draw(nodes: &[Node], format: GraphFormat) -> String {
    let graph = Graph::new(nodes);
    match format {
        GraphFormat::Text => graph.text(),
        GraphFormat::Dot => graph.dot(),
        GraphFormat::Mermaid => graph.mermaid(),
    }
}

struct Graph<'a> {
    nodes: BTreeMap<&'a ObjectKey, &'a Node>,
    /// Only one namespace: names are shown without it.
    single_namespace: bool,
}

impl<'a> Graph<'a> {
    fn new(nodes: &'a [Node]) -> Self {
        let namespaces: BTreeSet<&str> = nodes.iter().map(|n| n.key.namespace.as_str()).collect();
        Graph {
            nodes: nodes.iter().map(|n| (&n.key, n)).collect(),
            single_namespace: namespaces.len() <= 1,
        }
    }

    fn label(&self, key: &ObjectKey) -> String {
        if self.single_namespace {
            key.name.clone()
        } else {
            key.to_string()
        }
    }

    fn state(&self, key: &ObjectKey) -> &'static str {
        match self.nodes.get(key) {
            None => "missing",
            Some(node) => match node.ready {
                Some(true) => "Ready",
                Some(false) => "NotReady",
                None => "",
            },
        }
    }

    /// Services nobody depends on are the roots; a graph that is all cycle still shows.
    fn roots(&self) -> Vec<&'a ObjectKey> {
        let depended: BTreeSet<&ObjectKey> = self
            .nodes
            .values()
            .flat_map(|n| n.dependencies.iter())
            .collect();
        let roots: Vec<&ObjectKey> = self
            .nodes
            .keys()
            .copied()
            .filter(|k| !depended.contains(k))
            .collect();
        if roots.is_empty() {
            self.nodes.keys().copied().collect()
        } else {
            roots
        }
    }

    fn text(&self) -> String {
        let mut out = String::new();
        for root in self.roots() {
            let _ = writeln!(out, "{}", self.text_line(root));
            self.text_children(root, "", &mut vec![root.clone()], &mut out);
        }
        out
    }

    fn text_line(&self, key: &ObjectKey) -> String {
        match self.state(key) {
            "" => self.label(key),
            state => format!("{} [{state}]", self.label(key)),
        }
    }

    fn text_children(
        &self,
        key: &ObjectKey,
        prefix: &str,
        path: &mut Vec<ObjectKey>,
        out: &mut String,
    ) {
        let Some(node) = self.nodes.get(key) else {
            return;
        };
        let count = node.dependencies.len() + node.backing.len();
        for (i, dependency) in node.dependencies.iter().enumerate() {
            let last = i + 1 == count;
            let branch = if last { "└── " } else { "├── " };
            if path.contains(dependency) {
                let _ = writeln!(out, "{prefix}{branch}{} (cycle)", self.label(dependency));
                continue;
            }
            let _ = writeln!(out, "{prefix}{branch}{}", self.text_line(dependency));
            path.push(dependency.clone());
            let child_prefix = format!("{prefix}{}", if last { "    " } else { "│   " });
            self.text_children(dependency, &child_prefix, path, out);
            path.pop();
        }
        for (i, (name, type_)) in node.backing.iter().enumerate() {
            let last = node.dependencies.len() + i + 1 == count;
            let branch = if last { "└── " } else { "├── " };
            let _ = writeln!(out, "{prefix}{branch}({name}: {type_})");
        }
    }

    /// Each backing service as `(its user, name, type)`.
    fn backing(&self) -> Vec<(&ObjectKey, &str, &str)> {
        self.nodes
            .values()
            .flat_map(|n| {
                n.backing
                    .iter()
                    .map(move |(name, type_)| (&n.key, name.as_str(), type_.as_str()))
            })
            .collect()
    }

    fn edges(&self) -> Vec<(&ObjectKey, &ObjectKey)> {
        self.nodes
            .values()
            .flat_map(|n| n.dependencies.iter().map(move |d| (&n.key, d)))
            .collect()
    }

    fn all_keys(&self) -> BTreeSet<&ObjectKey> {
        self.nodes
            .keys()
            .copied()
            .chain(self.edges().into_iter().map(|(_, to)| to))
            .collect()
    }

    fn dot(&self) -> String {
        let mut out = String::from(
            "digraph microservices {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n",
        );
        for key in self.all_keys() {
            let color = match self.state(key) {
                "Ready" => "darkgreen",
                "NotReady" => "orange",
                "missing" => "red",
                _ => "black",
            };
            let _ = writeln!(
                out,
                "  \"{key}\" [label=\"{}\", color={color}];",
                self.text_line(key)
            );
        }
        for (from, to) in self.edges() {
            let _ = writeln!(out, "  \"{from}\" -> \"{to}\";");
        }
        for (user, name, type_) in self.backing() {
            let _ = writeln!(
                out,
                "  \"{user}/{name}\" [label=\"{name}\\n{type_}\", shape=cylinder];\n  \"{user}\" -> \"{user}/{name}\" [style=dashed];"
            );
        }
        out.push_str("}\n");
        out
    }

    fn mermaid(&self) -> String {
        let mut out = String::from("graph LR\n");
        let id =
            |key: &ObjectKey| format!("{}_{}", key.namespace, key.name).replace(['-', '.'], "_");
        for key in self.all_keys() {
            let _ = writeln!(out, "  {}[\"{}\"]", id(key), self.text_line(key));
        }
        for (from, to) in self.edges() {
            let _ = writeln!(out, "  {} --> {}", id(from), id(to));
        }
        for (user, name, type_) in self.backing() {
            let store = format!("{}__{}", id(user), name.replace('-', "_"));
            let _ = writeln!(out, "  {store}[(\"{name}: {type_}\")]");
            let _ = writeln!(out, "  {} -.-> {store}", id(user));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, ready: Option<bool>, deps: &[&str]) -> Node {
        Node {
            key: ObjectKey::new("shop", name),
            ready,
            dependencies: deps.iter().map(|d| ObjectKey::new("shop", *d)).collect(),
            backing: Vec::new(),
        }
    }

    fn shop() -> Vec<Node> {
        vec![
            node("storefront", Some(true), &["inventory", "orders", "users"]),
            node("orders", Some(true), &["inventory", "payments", "users"]),
            node("users", Some(true), &[]),
            node("inventory", Some(false), &[]),
            node("payments", Some(true), &[]),
        ]
    }

    #[test]
    fn text_tree_from_the_roots() {
        let text = draw(&shop(), GraphFormat::Text);
        let expected = "\
storefront [Ready]
├── inventory [NotReady]
├── orders [Ready]
│   ├── inventory [NotReady]
│   ├── payments [Ready]
│   └── users [Ready]
└── users [Ready]
";
        assert_eq!(text, expected);
    }

    #[test]
    fn backing_services_hang_under_their_user() {
        let mut nodes = vec![node("orders", None, &["users"]), node("users", None, &[])];
        nodes[0].backing = vec![("db".into(), "postgres".into())];
        let text = draw(&nodes, GraphFormat::Text);
        assert_eq!(text, "orders\n├── users\n└── (db: postgres)\n");
        let dot = draw(&nodes, GraphFormat::Dot);
        assert!(
            dot.contains("\"shop/orders\" -> \"shop/orders/db\" [style=dashed];"),
            "{dot}"
        );
        assert!(dot.contains("shape=cylinder"), "{dot}");
        let mermaid = draw(&nodes, GraphFormat::Mermaid);
        assert!(
            mermaid.contains("shop_orders__db[(\"db: postgres\")]"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("shop_orders -.-> shop_orders__db"),
            "{mermaid}"
        );
    }

    #[test]
    fn cycles_and_missing_services_are_marked() {
        let nodes = vec![node("a", None, &["b"]), node("b", None, &["a", "ghost"])];
        let text = draw(&nodes, GraphFormat::Text);
        assert!(text.contains("a (cycle)"), "{text}");
        assert!(text.contains("ghost [missing]"), "{text}");
    }

    #[test]
    fn dot_and_mermaid_have_every_edge() {
        let dot = draw(&shop(), GraphFormat::Dot);
        assert!(
            dot.contains("\"shop/orders\" -> \"shop/payments\";"),
            "{dot}"
        );
        assert_eq!(dot.matches(" -> ").count(), 6);
        let mermaid = draw(&shop(), GraphFormat::Mermaid);
        assert!(
            mermaid.contains("shop_storefront --> shop_orders"),
            "{mermaid}"
        );
        assert_eq!(mermaid.matches(" --> ").count(), 6);
    }
}
