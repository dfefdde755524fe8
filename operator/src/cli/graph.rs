//! `flotilla graph`: the dependency graph of Microservices, with the backing services each
//! needs (and the Microservice running one, as its class says) and the asynchronous edges
//! (publisher → subject → consumer), as a picture: a text tree for terminals, DOT for
//! Graphviz and Mermaid for Markdown. The drawing is pure: the command brings the
//! Microservices and classes, from the live cluster or from files.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;
use std::process::ExitCode;

use super::render::read_documents;
use super::{GraphArgs, GraphFormat, block_on, write_stdout};
use crate::api::{Microservice, MicroserviceClass};
use crate::client::Target;
use crate::graph::{Admission, ObjectKey};
use crate::render::Input;
use crate::view::{GraphView, ServiceView};

pub(super) fn command(args: GraphArgs) -> ExitCode {
    let input = if args.files.is_empty() {
        block_on(live_input(args.namespace, &args.target.target()))
    } else {
        read_documents(&args.files)
            .and_then(|docs| crate::render::parse_input(&docs).map_err(|e| e.to_string()))
    };
    let input = match input {
        Ok(input) => input,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
    };
    let classes: Vec<&MicroserviceClass> = input.classes.iter().collect();
    let admission = Admission {
        classes: &classes,
        namespace_labels: None,
    };
    let graph = GraphView::of(&input.microservices, &admission);
    write_stdout(&draw(&graph.services, args.format))
}

/// The Microservices and the classes (which say who runs a backing service); without
/// the right to list classes the graph is drawn without those edges, with a warning.
async fn live_input(namespace: Option<String>, target: &Target) -> Result<Input, String> {
    let (client, _) = crate::client::client_for(target).await?;
    let api: kube::Api<Microservice> = match namespace {
        Some(namespace) => kube::Api::namespaced(client.clone(), &namespace),
        None => kube::Api::all(client.clone()),
    };
    let list = api
        .list(&Default::default())
        .await
        .map_err(|e| format!("listing Microservices: {e}"))?;
    let classes = match kube::Api::<MicroserviceClass>::all(client)
        .list(&Default::default())
        .await
    {
        Ok(classes) => classes.items,
        Err(error) => {
            eprintln!(
                "warning: listing MicroserviceClasses: {error}; backing services are drawn without the Microservices running them"
            );
            Vec::new()
        }
    };
    Ok(Input {
        microservices: list.items,
        classes,
    })
}

/// One subject on one broker, with who publishes it and who consumes it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Message<'a> {
    broker: String,
    subject: String,
    publishers: BTreeSet<&'a ObjectKey>,
    consumers: BTreeSet<&'a ObjectKey>,
}

/// Whether a consumer's `pattern` takes `subject`: NATS wildcards (`*` one token, `>` the
/// rest); any other broker's topics match only exactly.
fn subject_matches(pattern: &str, subject: &str) -> bool {
    let mut wanted = pattern.split('.');
    let mut given = subject.split('.');
    loop {
        match (wanted.next(), given.next()) {
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(_)) => {}
            (Some(w), Some(g)) if w == g => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

fn draw(nodes: &[ServiceView], format: GraphFormat) -> String {
    let graph = Graph::new(nodes);
    match format {
        GraphFormat::Text => graph.text(),
        GraphFormat::Dot => graph.dot(),
        GraphFormat::Mermaid => graph.mermaid(),
    }
}

struct Graph<'a> {
    nodes: BTreeMap<&'a ObjectKey, &'a ServiceView>,
    /// Only one namespace: names are shown without it.
    single_namespace: bool,
}

impl<'a> Graph<'a> {
    fn new(nodes: &'a [ServiceView]) -> Self {
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
        let messages = self.messages();
        if !messages.is_empty() {
            out.push_str("\nmessages (publishers → subject → consumers):\n");
        }
        for message in messages {
            let _ = writeln!(
                out,
                "  {} → {} [{}] → {}",
                self.names(&message.publishers),
                message.subject,
                message.broker,
                self.names(&message.consumers)
            );
        }
        out
    }

    fn text_line(&self, key: &ObjectKey) -> String {
        let line = match self.state(key) {
            "" => self.label(key),
            state => format!("{} [{state}]", self.label(key)),
        };
        match self.nodes.get(key).and_then(|n| n.release.as_ref()) {
            Some(release) => format!("{line} (releasing: {})", release.text),
            None => line,
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
        for (i, backing) in node.backing.iter().enumerate() {
            let last = node.dependencies.len() + i + 1 == count;
            let branch = if last { "└── " } else { "├── " };
            let (name, type_) = (&backing.name, &backing.type_);
            match &backing.run_by {
                Some(broker) => {
                    let _ = writeln!(
                        out,
                        "{prefix}{branch}({name}: {type_}) → {}",
                        self.text_line(broker)
                    );
                }
                None => {
                    let _ = writeln!(out, "{prefix}{branch}({name}: {type_})");
                }
            }
        }
    }

    /// Backing services no Microservice runs, as `(its user, name, type)`.
    fn backing(&self) -> Vec<(&ObjectKey, &str, &str)> {
        self.nodes
            .values()
            .flat_map(|n| {
                n.backing
                    .iter()
                    .filter(|b| b.run_by.is_none())
                    .map(move |b| (&n.key, b.name.as_str(), b.type_.as_str()))
            })
            .collect()
    }

    /// Users and the Microservices running their backing services, as `(user, name,
    /// broker)`.
    fn run_by(&self) -> Vec<(&ObjectKey, &str, &ObjectKey)> {
        self.nodes
            .values()
            .flat_map(|n| {
                n.backing
                    .iter()
                    .filter_map(move |b| Some((&n.key, b.name.as_str(), b.run_by.as_ref()?)))
            })
            .collect()
    }

    /// Every subject published, with its consumers; then patterns nobody publishes to,
    /// with their consumers.
    fn messages(&self) -> Vec<Message<'a>> {
        let mut messages: BTreeMap<(String, String), Message<'a>> = BTreeMap::new();
        for node in self.nodes.values() {
            for (backing, subject) in &node.publishes {
                let Some(broker) = node.broker(backing) else {
                    continue;
                };
                messages
                    .entry((broker.clone(), subject.clone()))
                    .or_insert_with(|| Message {
                        broker,
                        subject: subject.clone(),
                        publishers: BTreeSet::new(),
                        consumers: BTreeSet::new(),
                    })
                    .publishers
                    .insert(&node.key);
            }
        }
        let mut unmatched: Vec<Message<'a>> = Vec::new();
        for node in self.nodes.values() {
            for (backing, pattern) in &node.consumes {
                let Some(broker) = node.broker(backing) else {
                    continue;
                };
                let mut matched = false;
                for message in messages.values_mut() {
                    if message.broker == broker && subject_matches(pattern, &message.subject) {
                        message.consumers.insert(&node.key);
                        matched = true;
                    }
                }
                if !matched {
                    match unmatched
                        .iter_mut()
                        .find(|m| m.broker == broker && &m.subject == pattern)
                    {
                        Some(message) => {
                            message.consumers.insert(&node.key);
                        }
                        None => unmatched.push(Message {
                            broker,
                            subject: pattern.clone(),
                            publishers: BTreeSet::new(),
                            consumers: BTreeSet::from([&node.key]),
                        }),
                    }
                }
            }
        }
        messages.into_values().chain(unmatched).collect()
    }

    fn names(&self, keys: &BTreeSet<&ObjectKey>) -> String {
        if keys.is_empty() {
            return "nobody".to_string();
        }
        keys.iter()
            .map(|k| self.label(k))
            .collect::<Vec<_>>()
            .join(", ")
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
            .chain(self.run_by().into_iter().map(|(_, _, broker)| broker))
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
        for (user, name, broker) in self.run_by() {
            let _ = writeln!(
                out,
                "  \"{user}\" -> \"{broker}\" [style=dashed, label=\"{name}\"];"
            );
        }
        for (i, message) in self.messages().iter().enumerate() {
            let _ = writeln!(
                out,
                "  \"subject{i}\" [label=\"{}\", shape=parallelogram];",
                message.subject
            );
            for publisher in &message.publishers {
                let _ = writeln!(
                    out,
                    "  \"{publisher}\" -> \"subject{i}\" [style=dotted, label=\"publishes\"];"
                );
            }
            for consumer in &message.consumers {
                let _ = writeln!(
                    out,
                    "  \"subject{i}\" -> \"{consumer}\" [style=dotted, label=\"consumes\"];"
                );
            }
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
        for (user, name, broker) in self.run_by() {
            let _ = writeln!(out, "  {} -. {name} .-> {}", id(user), id(broker));
        }
        for (i, message) in self.messages().iter().enumerate() {
            let _ = writeln!(out, "  subject{i}[/\"{}\"/]", message.subject);
            for publisher in &message.publishers {
                let _ = writeln!(out, "  {} -. publishes .-> subject{i}", id(publisher));
            }
            for consumer in &message.consumers {
                let _ = writeln!(out, "  subject{i} -. consumes .-> {}", id(consumer));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::view::{BackingView, Health};

    fn node(name: &str, ready: Option<bool>, deps: &[&str]) -> ServiceView {
        ServiceView {
            key: ObjectKey::new("shop", name),
            health: Health::Unknown,
            ready,
            reason: String::new(),
            message: String::new(),
            class: None,
            image: "a".into(),
            ready_replicas: 0,
            desired_replicas: 0,
            release: None,
            dependencies: deps.iter().map(|d| ObjectKey::new("shop", *d)).collect(),
            backing: Vec::new(),
            publishes: Vec::new(),
            consumes: Vec::new(),
        }
    }

    fn shop() -> Vec<ServiceView> {
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
        nodes[0].backing = vec![BackingView {
            name: "db".into(),
            type_: "postgres".into(),
            run_by: None,
        }];
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

    #[test]
    fn a_broker_run_as_a_microservice_and_its_subjects_are_drawn() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/broker.yaml"
        ))
        .unwrap();
        let input = crate::render::parse_input(&[text]).unwrap();
        let classes: Vec<&MicroserviceClass> = input.classes.iter().collect();
        let admission = Admission {
            classes: &classes,
            namespace_labels: None,
        };
        let nodes = GraphView::of(&input.microservices, &admission).services;
        let text = draw(&nodes, GraphFormat::Text);
        assert!(text.contains("└── (events: nats) → nats\n"), "{text}");
        assert!(
            text.contains("orders → order.placed [shop/nats] → inventory"),
            "{text}"
        );
        let dot = draw(&nodes, GraphFormat::Dot);
        assert!(
            dot.contains("\"shop/orders\" -> \"shop/nats\" [style=dashed, label=\"events\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"shop/orders\" -> \"subject0\" [style=dotted, label=\"publishes\"];"),
            "{dot}"
        );
        assert!(
            dot.contains("\"subject0\" -> \"shop/inventory\" [style=dotted, label=\"consumes\"];"),
            "{dot}"
        );
        let mermaid = draw(&nodes, GraphFormat::Mermaid);
        assert!(
            mermaid.contains("subject0[/\"order.placed\"/]"),
            "{mermaid}"
        );
        assert!(
            mermaid.contains("subject0 -. consumes .-> shop_inventory"),
            "{mermaid}"
        );
    }

    #[test]
    fn nats_wildcards_match_tokens() {
        assert!(subject_matches("order.*", "order.placed"));
        assert!(subject_matches("order.>", "order.placed.eu"));
        assert!(!subject_matches("order.*", "order.placed.eu"));
        assert!(!subject_matches("order.>", "order"));
        assert!(subject_matches("order.placed", "order.placed"));
        assert!(!subject_matches("order.placed", "order.paid"));
    }

    #[test]
    fn a_release_under_way_shows_on_its_node() {
        let mut nodes = shop();
        let ms: Microservice = serde_saphyr::from_str(
            "{apiVersion: flotilla.dev/v1alpha1, kind: Microservice, metadata: {name: web, namespace: shop}, spec: {image: a}, status: {rollout: {strategy: canary, phase: Paused, step: 1, steps: 2, weight: 25}}}",
        )
        .unwrap();
        nodes[0].release = crate::view::release_under_way(&ms);
        let text = draw(&nodes, GraphFormat::Text);
        assert!(
            text.starts_with("storefront [Ready] (releasing: canary step 1/2 25%, paused)\n"),
            "{text}"
        );
    }
}
