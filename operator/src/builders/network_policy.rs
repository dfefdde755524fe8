//! The NetworkPolicy: default deny in both directions for the service's pods, then
//! exactly the traffic the dependency graph, `spec.network` and `spec.expose` call for.
//! None at all under a class whose network mode is `permissive`.
//!
//! NetworkPolicy ports are matched against the pods' container ports (after the
//! Service's DNAT), so every port here is a `targetPort`, never a Service port.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::labels::NAMESPACE_NAME_LABEL;
use crate::graph::{Dependent, ResolvedDependency};
use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::kind::{ChildKind, KindVersion, to_child};
use super::{
    BuildContext, BuildError, container_port, expose, find_port, labels, protocol_name,
    protocol_str,
};
use crate::api::{
    AllowFrom, BackingServiceEndpoint, Cidr, ClassDns, ClassMonitoring, ControllerPeer, EgressPort,
    EgressRule, Microservice, MicroserviceSpec, NetworkMode, Port, ServiceType,
};

/// Where the ingress controller runs when the class does not say.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "ingress-nginx";

/// Where the cluster's DNS pods run when the class does not say.
pub const DEFAULT_DNS_NAMESPACE: &str = "kube-system";

/// Where Prometheus runs when the class does not say (kube-prometheus's namespace).
pub const DEFAULT_MONITORING_NAMESPACE: &str = "monitoring";

/// The NetworkPolicy kind.
pub static KIND: ChildKind = ChildKind::new(
    "NetworkPolicy",
    "networking.k8s.io",
    "networkpolicies",
    &[KindVersion::since("v1", 1, 7)],
    |ms, ctx| to_child(KIND.kind, build(ms, ctx)?),
);

pub fn build(ms: &Microservice, ctx: &BuildContext) -> Result<Option<NetworkPolicy>, BuildError> {
    if ctx.class.network_mode == NetworkMode::Permissive {
        return Ok(None);
    }
    let spec = &ms.spec;
    let namespace = ms.namespace().unwrap_or_default();
    let network = spec.network.clone().unwrap_or_default();

    let mut ingress = dependents_ingress(&ctx.dependents, &namespace);
    ingress.extend(controller_ingress(
        spec,
        ctx.class.expose.controller.as_ref(),
    )?);
    ingress.extend(external_ingress(spec));
    ingress.extend(allow_from_ingress(
        spec,
        &network.allow_from,
        ctx.class.allow_from_namespaces.as_ref(),
    )?);
    ingress.extend(monitoring_ingress(spec, &ctx.class.monitoring)?);

    let mut egress = vec![dns_egress(&ctx.class.dns)];
    egress.extend(dependencies_egress(&ctx.dependencies, &namespace));
    egress.extend(network.egress.iter().map(cidr_egress));
    egress.extend(
        ctx.backing
            .iter()
            .filter_map(|binding| binding.secret()?.endpoint.as_ref())
            .map(|endpoint| backing_egress(endpoint, &namespace)),
    );
    // A broker run as a Microservice: its pods on the port called, like a dependency.
    let run_by: Vec<ResolvedDependency> = ctx
        .backing_microservices
        .iter()
        .map(|resolved| resolved.target.clone())
        .collect();
    egress.extend(dependencies_egress(&run_by, &namespace));

    Ok(Some(NetworkPolicy {
        metadata: labels::child_meta(ms),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(LabelSelector {
                match_labels: Some(labels::pod_selector(&ms.name_any())),
                match_expressions: None,
            }),
            // Both listed so that a policy with no rules of a kind still denies it.
            policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
            ingress: Some(ingress),
            egress: Some(egress),
        }),
    }))
}

/// The Microservices that call this one: one rule per namespace and set of ports called,
/// its callers selected by instance (`In`), so that a popular service's policy grows by a
/// name per caller rather than by a rule.
fn dependents_ingress(dependents: &[Dependent], namespace: &str) -> Vec<NetworkPolicyIngressRule> {
    // (namespace, ports as JSON, labels other than name and instance) -> (ports, callers)
    type Group = (Vec<NetworkPolicyPort>, BTreeSet<String>);
    let mut groups: BTreeMap<(String, String, BTreeMap<String, String>), Group> = BTreeMap::new();
    // No ports means nothing to open; an empty port list would open every port.
    for dependent in dependents.iter().filter(|d| !d.ports.is_empty()) {
        let ports: Vec<NetworkPolicyPort> = dependent.ports.iter().map(policy_port).collect();
        let mut common = dependent.pod_selector.clone();
        common.remove(labels::NAME);
        let instance = common
            .remove(labels::INSTANCE)
            .unwrap_or_else(|| dependent.name.clone());
        let key = (
            dependent.namespace.clone(),
            serde_json::to_string(&ports).unwrap_or_default(),
            common,
        );
        groups
            .entry(key)
            .or_insert_with(|| (ports, BTreeSet::new()))
            .1
            .insert(instance);
    }
    groups
        .into_iter()
        .map(|((their_namespace, _, common), (ports, callers))| {
            let selector = LabelSelector {
                match_labels: (!common.is_empty()).then_some(common),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: labels::INSTANCE.to_string(),
                    operator: "In".to_string(),
                    values: Some(callers.into_iter().collect()),
                }]),
            };
            NetworkPolicyIngressRule {
                from: Some(vec![peer_of(selector, &their_namespace, namespace)]),
                ports: Some(ports),
            }
        })
        .collect()
}

/// The ingress controller (or the Gateway's proxies) forward the exposed paths; only
/// their ports are opened, not every declared port.
fn controller_ingress(
    spec: &MicroserviceSpec,
    controller: Option<&ControllerPeer>,
) -> Result<Option<NetworkPolicyIngressRule>, BuildError> {
    let exposed: Vec<NetworkPolicyPort> = expose::exposed_ports(spec)?
        .into_iter()
        .map(policy_port)
        .collect();
    Ok((!exposed.is_empty()).then(|| NetworkPolicyIngressRule {
        from: Some(vec![controller_peer(controller)]),
        ports: Some(exposed),
    }))
}

/// Every declared port from anywhere, for a NodePort or LoadBalancer Service: these
/// forward from arbitrary client and node addresses, so no peer list can describe the
/// sources.
fn external_ingress(spec: &MicroserviceSpec) -> Option<NetworkPolicyIngressRule> {
    let service_type = spec
        .service
        .as_ref()
        .and_then(|s| s.type_)
        .unwrap_or_default();
    let all_ports = all_ports(spec);
    let external = matches!(
        service_type,
        ServiceType::NodePort | ServiceType::LoadBalancer
    );
    if !external || all_ports.is_empty() {
        return None;
    }
    Some(NetworkPolicyIngressRule {
        from: None,
        ports: Some(all_ports),
    })
}

/// One rule per `spec.network.allowFrom` entry.
fn allow_from_ingress(
    spec: &MicroserviceSpec,
    allow_from: &[AllowFrom],
    allowed_namespaces: Option<&LabelSelector>,
) -> Result<Vec<NetworkPolicyIngressRule>, BuildError> {
    allow_from
        .iter()
        .enumerate()
        .map(|(i, allow)| {
            let field = format!("spec.network.allowFrom[{i}]");
            allow_from_rule(spec, allow, allowed_namespaces, &field)
        })
        .collect()
}

/// Both selectors at once: `selector` with every requirement of `within` added (its
/// labels as `In` expressions, so that a contradiction selects nothing rather than
/// overwriting a label).
pub fn narrowed(selector: &LabelSelector, within: &LabelSelector) -> LabelSelector {
    let mut expressions = selector.match_expressions.clone().unwrap_or_default();
    expressions.extend(within.match_labels.iter().flatten().map(|(key, value)| {
        LabelSelectorRequirement {
            key: key.clone(),
            operator: "In".to_string(),
            values: Some(vec![value.clone()]),
        }
    }));
    expressions.extend(within.match_expressions.iter().flatten().cloned());
    LabelSelector {
        match_labels: selector.match_labels.clone(),
        match_expressions: (!expressions.is_empty()).then_some(expressions),
    }
}

fn allow_from_rule(
    spec: &MicroserviceSpec,
    allow: &AllowFrom,
    allowed_namespaces: Option<&LabelSelector>,
    field: &str,
) -> Result<NetworkPolicyIngressRule, BuildError> {
    if allow.namespace_selector.is_none() && allow.pod_selector.is_none() {
        return Err(BuildError::EmptyPeer {
            field: field.to_string(),
        });
    }
    let ports = if allow.ports.is_empty() {
        all_ports(spec)
    } else {
        allow
            .ports
            .iter()
            .enumerate()
            .map(|(j, name)| find_port(spec, name, &format!("{field}.ports[{j}]")).map(policy_port))
            .collect::<Result<Vec<_>, _>>()?
    };
    Ok(NetworkPolicyIngressRule {
        from: Some(vec![NetworkPolicyPeer {
            namespace_selector: match (&allow.namespace_selector, allowed_namespaces) {
                (Some(selector), Some(within)) => Some(narrowed(selector, within)),
                (selector, _) => selector.clone(),
            },
            pod_selector: allow.pod_selector.clone(),
            ip_block: None,
        }]),
        // No declared ports at all: the rule covers every port.
        ports: (!ports.is_empty()).then_some(ports),
    })
}

/// The scraper (the class's monitoring namespace, default `monitoring`) on the metrics
/// port only, when `spec.metrics` is on: whether or not a ServiceMonitor can be made, a
/// Prometheus scraping by other means needs the same way in.
fn monitoring_ingress(
    spec: &MicroserviceSpec,
    monitoring: &ClassMonitoring,
) -> Result<Option<NetworkPolicyIngressRule>, BuildError> {
    let Some(metrics) = super::service_monitor::enabled(spec) else {
        return Ok(None);
    };
    let port = super::service_monitor::metrics_port(spec, metrics)?;
    Ok(Some(NetworkPolicyIngressRule {
        from: Some(vec![peer_in(
            monitoring.namespace_selector.clone(),
            monitoring.namespace.clone(),
            DEFAULT_MONITORING_NAMESPACE,
            monitoring.pod_selector.clone(),
        )]),
        ports: Some(vec![policy_port(port)]),
    }))
}

/// DNS lookups, to the cluster's DNS only: where it runs is the class's to say
/// (`spec.dns`); the `k8s-app: kube-dns` pods of `kube-system` by default.
fn dns_egress(dns: &ClassDns) -> NetworkPolicyEgressRule {
    let mut to = Vec::new();
    if !dns.cidrs_only {
        to.push(peer_in(
            dns.namespace_selector.clone(),
            dns.namespace.clone(),
            DEFAULT_DNS_NAMESPACE,
            Some(dns.pod_selector.clone().unwrap_or_else(|| LabelSelector {
                match_labels: Some(BTreeMap::from([(
                    "k8s-app".to_string(),
                    "kube-dns".to_string(),
                )])),
                match_expressions: None,
            })),
        ));
    }
    to.extend(dns.cidrs.iter().map(cidr_peer));
    NetworkPolicyEgressRule {
        to: Some(to),
        ports: Some(vec![number_port(53, "UDP"), number_port(53, "TCP")]),
    }
}

/// The pods of each dependency, on the port called.
fn dependencies_egress(
    dependencies: &[ResolvedDependency],
    namespace: &str,
) -> Vec<NetworkPolicyEgressRule> {
    dependencies
        .iter()
        .map(|dependency| NetworkPolicyEgressRule {
            to: Some(vec![pods_peer(
                &dependency.pod_selector,
                &dependency.namespace,
                namespace,
            )]),
            ports: Some(vec![policy_port(&dependency.port)]),
        })
        .collect()
}

/// One `spec.network.egress` entry: its CIDRs on its ports, or on every port when it
/// lists none.
fn cidr_egress(rule: &EgressRule) -> NetworkPolicyEgressRule {
    let ports: Vec<NetworkPolicyPort> = rule.ports.iter().map(egress_port).collect();
    NetworkPolicyEgressRule {
        to: Some(rule.cidrs.iter().map(cidr_peer).collect()),
        ports: (!ports.is_empty()).then_some(ports),
    }
}

/// A backing service's endpoint: its pods (in its namespace, else this one) and its
/// addresses, on its ports only.
fn backing_egress(endpoint: &BackingServiceEndpoint, namespace: &str) -> NetworkPolicyEgressRule {
    let pods = match (&endpoint.namespace, &endpoint.pod_selector) {
        (their_namespace, Some(selector)) => Some(peer_of(
            selector.clone(),
            their_namespace.as_deref().unwrap_or(namespace),
            namespace,
        )),
        // Every pod of that namespace: its namespace selector alone says so.
        (Some(their_namespace), None) => Some(peer_in(
            None,
            Some(their_namespace.clone()),
            namespace,
            None,
        )),
        (None, None) => None,
    };
    NetworkPolicyEgressRule {
        to: Some(
            pods.into_iter()
                .chain(endpoint.cidrs.iter().map(cidr_peer))
                .collect(),
        ),
        ports: Some(endpoint.ports.iter().map(egress_port).collect()),
    }
}

/// A destination port of `spec.network.egress` or a backing service's endpoint.
fn egress_port(port: &EgressPort) -> NetworkPolicyPort {
    number_port(port.port, protocol_str(port.protocol.unwrap_or_default()))
}

/// Addresses in CIDR notation, as a peer.
fn cidr_peer(cidr: &Cidr) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        ip_block: Some(IPBlock {
            cidr: cidr.0.clone(),
            except: None,
        }),
        ..NetworkPolicyPeer::default()
    }
}

/// The ingress controller's pods: the class's namespaceSelector, else its namespace
/// (default `ingress-nginx`) by name label; its podSelector, else every pod there.
fn controller_peer(controller: Option<&ControllerPeer>) -> NetworkPolicyPeer {
    let controller = controller.cloned().unwrap_or_default();
    peer_in(
        controller.namespace_selector,
        controller.namespace,
        DEFAULT_CONTROLLER_NAMESPACE,
        controller.pod_selector,
    )
}

/// Pods a class names (the ingress controller's, the scraper's): `namespace_selector`,
/// else `namespace` (else `default_namespace`) by its name label; `pod_selector`, else
/// every pod there.
fn peer_in(
    namespace_selector: Option<LabelSelector>,
    namespace: Option<String>,
    default_namespace: &str,
    pod_selector: Option<LabelSelector>,
) -> NetworkPolicyPeer {
    let namespace_selector = namespace_selector.unwrap_or_else(|| LabelSelector {
        match_labels: Some(BTreeMap::from([(
            NAMESPACE_NAME_LABEL.to_string(),
            namespace.unwrap_or_else(|| default_namespace.to_string()),
        )])),
        match_expressions: None,
    });
    NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector),
        pod_selector,
        ip_block: None,
    }
}

/// The pods of another Microservice; with a namespaceSelector only when it lives
/// elsewhere (a peer with only a podSelector means the policy's own namespace).
fn pods_peer(
    pod_selector: &BTreeMap<String, String>,
    their_namespace: &str,
    our_namespace: &str,
) -> NetworkPolicyPeer {
    let selector = LabelSelector {
        match_labels: Some(pod_selector.clone()),
        match_expressions: None,
    };
    peer_of(selector, their_namespace, our_namespace)
}

/// Pods selected by `pod_selector` in `their_namespace`, seen from `our_namespace`.
fn peer_of(
    pod_selector: LabelSelector,
    their_namespace: &str,
    our_namespace: &str,
) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        pod_selector: Some(pod_selector),
        namespace_selector: (their_namespace != our_namespace).then(|| LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                their_namespace.to_string(),
            )])),
            match_expressions: None,
        }),
        ip_block: None,
    }
}

fn all_ports(spec: &MicroserviceSpec) -> Vec<NetworkPolicyPort> {
    spec.ports.iter().map(policy_port).collect()
}

fn policy_port(port: &Port) -> NetworkPolicyPort {
    number_port(container_port(port), &protocol_name(port))
}

fn number_port(port: i32, protocol: &str) -> NetworkPolicyPort {
    NetworkPolicyPort {
        port: Some(IntOrString::Int(port)),
        protocol: Some(protocol.to_string()),
        end_port: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> MicroserviceSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn dependent(name: &str, namespace: &str, ports: Vec<Port>) -> Dependent {
        Dependent {
            name: name.to_string(),
            namespace: namespace.to_string(),
            ports,
            pod_selector: labels::selector_labels(name),
        }
    }

    #[test]
    fn callers_are_merged_per_namespace_and_ports_and_idle_ones_open_nothing() {
        let ports =
            spec("{image: a, ports: [{name: http, port: 80}, {name: admin, port: 9090}]}").ports;
        let http = vec![ports[0].clone()];
        let rules = dependents_ingress(
            &[
                dependent("web", "shop", http.clone()),
                dependent("idle", "shop", vec![]),
                dependent("api", "shop", http.clone()),
                dependent("ops", "shop", ports.clone()),
                dependent("bff", "edge", http),
            ],
            "shop",
        );
        let seen: Vec<(Option<String>, Vec<String>, usize)> = rules
            .iter()
            .map(|rule| {
                let peer = &rule.from.as_ref().unwrap()[0];
                let selector = peer.pod_selector.as_ref().unwrap();
                let callers = selector.match_expressions.as_ref().unwrap()[0]
                    .values
                    .clone()
                    .unwrap();
                assert_eq!(selector.match_labels, None);
                let namespace = peer
                    .namespace_selector
                    .as_ref()
                    .map(|s| s.match_labels.as_ref().unwrap()[NAMESPACE_NAME_LABEL].clone());
                (namespace, callers, rule.ports.as_ref().unwrap().len())
            })
            .collect();
        assert_eq!(
            seen,
            [
                (Some("edge".to_string()), vec!["bff".to_string()], 1),
                (None, vec!["ops".to_string()], 2),
                (None, vec!["api".to_string(), "web".to_string()], 1),
            ]
        );
    }

    #[test]
    fn an_external_service_without_ports_opens_nothing() {
        assert!(external_ingress(&spec("{image: a, service: {type: NodePort}}")).is_none());
        let rule = external_ingress(&spec(
            "{image: a, ports: [{name: http, port: 80}], service: {type: LoadBalancer}}",
        ))
        .expect("a rule");
        assert_eq!(rule.from, None);
        assert_eq!(rule.ports, Some(vec![number_port(80, "TCP")]));
    }

    #[test]
    fn an_allow_from_entry_needs_a_selector() {
        let allow_from = [AllowFrom::default()];
        assert_eq!(
            allow_from_ingress(&spec("{image: a}"), &allow_from, None),
            Err(BuildError::EmptyPeer {
                field: "spec.network.allowFrom[0]".into()
            })
        );
    }

    #[test]
    fn without_declared_ports_an_allow_from_rule_covers_every_port() {
        let spec = spec("{image: a, network: {allowFrom: [{podSelector: {matchLabels: {a: b}}}]}}");
        let rules =
            allow_from_ingress(&spec, &spec.network.as_ref().unwrap().allow_from, None).unwrap();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].ports, None);
    }

    #[test]
    fn the_class_narrows_allow_from_namespaces() {
        let within: LabelSelector =
            serde_saphyr::from_str("{matchLabels: {tenant: shop}}").unwrap();
        let spec = spec(
            "{image: a, ports: [{name: http, port: 80}], network: {allowFrom: [{namespaceSelector: {matchLabels: {tier: web}}}, {podSelector: {matchLabels: {app: x}}}]}}",
        );
        let allow_from = &spec.network.as_ref().unwrap().allow_from;
        let rules = allow_from_ingress(&spec, allow_from, Some(&within)).unwrap();
        let narrowed = rules[0].from.as_ref().unwrap()[0]
            .namespace_selector
            .clone()
            .unwrap();
        assert_eq!(narrowed.match_labels.unwrap()["tier"], "web");
        let expression = &narrowed.match_expressions.unwrap()[0];
        assert_eq!(
            (expression.key.as_str(), expression.operator.as_str()),
            ("tenant", "In")
        );
        assert_eq!(expression.values, Some(vec!["shop".to_string()]));
        // Its own namespace's pods: nothing to narrow.
        assert_eq!(rules[1].from.as_ref().unwrap()[0].namespace_selector, None);
    }

    #[test]
    fn dns_goes_to_the_cluster_dns_only() {
        let rule = dns_egress(&ClassDns::default());
        let labels = |selector: &Option<LabelSelector>| {
            selector
                .as_ref()
                .and_then(|s| s.match_labels.clone())
                .unwrap_or_default()
        };
        let to = rule.to.expect("destinations, never any address");
        assert_eq!(to.len(), 1);
        assert_eq!(
            labels(&to[0].namespace_selector)[NAMESPACE_NAME_LABEL],
            "kube-system"
        );
        assert_eq!(labels(&to[0].pod_selector)["k8s-app"], "kube-dns");
        assert_eq!(
            rule.ports,
            Some(vec![number_port(53, "UDP"), number_port(53, "TCP")])
        );
        // NodeLocal DNSCache beside CoreDNS, then a resolver on the nodes alone.
        let node_local: ClassDns =
            serde_saphyr::from_str("{namespace: dns, cidrs: [169.254.20.10/32]}").unwrap();
        let to = dns_egress(&node_local).to.unwrap();
        assert_eq!(
            labels(&to[0].namespace_selector)[NAMESPACE_NAME_LABEL],
            "dns"
        );
        assert_eq!(to[1].ip_block.as_ref().unwrap().cidr, "169.254.20.10/32");
        let only: ClassDns =
            serde_saphyr::from_str("{cidrsOnly: true, cidrs: [10.0.0.10/32]}").unwrap();
        let to = dns_egress(&only).to.unwrap();
        assert_eq!(to.len(), 1);
        assert_eq!(to[0].ip_block.as_ref().unwrap().cidr, "10.0.0.10/32");
    }

    #[test]
    fn the_scraper_is_let_in_on_the_metrics_port_only() {
        let two_ports = "{image: a, ports: [{name: http, port: 80, targetPort: 8080}, {name: admin, port: 9090}]";
        assert_eq!(
            monitoring_ingress(&spec(&format!("{two_ports}}}")), &Default::default()),
            Ok(None)
        );
        let rule = monitoring_ingress(
            &spec(&format!("{two_ports}, metrics: {{port: admin}}}}")),
            &Default::default(),
        )
        .unwrap()
        .expect("a rule");
        assert_eq!(rule.ports, Some(vec![number_port(9090, "TCP")]));
        let peer = &rule.from.unwrap()[0];
        assert_eq!(
            peer.namespace_selector.as_ref().unwrap().match_labels,
            Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                "monitoring".to_string()
            )]))
        );
        assert_eq!(peer.pod_selector, None);
        // The primary port by default, the class's namespace and pods.
        let class: ClassMonitoring = serde_saphyr::from_str(
            "{namespace: observability, podSelector: {matchLabels: {app: prometheus}}}",
        )
        .unwrap();
        let rule = monitoring_ingress(&spec(&format!("{two_ports}, metrics: {{}}}}")), &class)
            .unwrap()
            .expect("a rule");
        assert_eq!(rule.ports, Some(vec![number_port(8080, "TCP")]));
        let peer = &rule.from.unwrap()[0];
        assert_eq!(
            peer.namespace_selector
                .as_ref()
                .unwrap()
                .match_labels
                .as_ref()
                .unwrap()[NAMESPACE_NAME_LABEL],
            "observability"
        );
        assert!(peer.pod_selector.is_some());
        // Disabled: nothing opened.
        assert_eq!(
            monitoring_ingress(
                &spec(&format!("{two_ports}, metrics: {{disabled: true}}}}")),
                &class
            ),
            Ok(None)
        );
    }

    #[test]
    fn an_egress_entry_without_ports_covers_every_port() {
        let spec = spec("{image: a, network: {egress: [{cidrs: [10.0.0.0/8]}]}}");
        let rule = cidr_egress(&spec.network.as_ref().unwrap().egress[0]);
        assert_eq!(rule.ports, None);
        assert_eq!(
            rule.to.unwrap()[0].ip_block.as_ref().unwrap().cidr,
            "10.0.0.0/8"
        );
    }
}
