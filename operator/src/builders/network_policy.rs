//! The NetworkPolicy: default deny in both directions for the service's pods, then
//! exactly the traffic the dependency graph, `spec.network` and `spec.expose` call for.
//! None at all under a class whose network mode is `permissive`.
//!
//! NetworkPolicy ports are matched against the pods' container ports (after the
//! Service's DNAT), so every port here is a `targetPort`, never a Service port.

use std::collections::BTreeMap;

use k8s_openapi::api::networking::v1::{
    IPBlock, NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;

use super::kind::{ChildKind, KindVersion, to_child};
use super::{
    BuildContext, BuildError, container_port, expose, find_port, labels, protocol_name,
    protocol_str,
};
use crate::api::{ControllerPeer, Microservice, NetworkMode, Port, ServiceType};

/// The namespace label a namespaceSelector matches on. The API server sets it on every
/// namespace only from 1.21; on 1.20 cluster admins must label namespaces themselves for
/// cross-namespace dependencies to be allowed.
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Where the ingress controller runs when the class does not say.
pub const DEFAULT_CONTROLLER_NAMESPACE: &str = "ingress-nginx";

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
    let all_ports: Vec<NetworkPolicyPort> = spec.ports.iter().map(policy_port).collect();

    let mut ingress = Vec::new();

    let mut dependents: Vec<_> = ctx.dependents.iter().collect();
    dependents.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for dependent in dependents {
        // No ports means nothing to open; an empty port list would open every port.
        if dependent.ports.is_empty() {
            continue;
        }
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![pods_peer(
                &dependent.pod_selector,
                &dependent.namespace,
                &namespace,
            )]),
            ports: Some(dependent.ports.iter().map(policy_port).collect()),
        });
    }

    // The ingress controller (or the Gateway's proxies) forward the exposed paths; only
    // their ports are opened, not every declared port.
    let exposed: Vec<NetworkPolicyPort> = expose::exposed_ports(spec)?
        .into_iter()
        .map(policy_port)
        .collect();
    if !exposed.is_empty() {
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![controller_peer(ctx.class.expose.controller.as_ref())]),
            ports: Some(exposed),
        });
    }

    let service_type = spec
        .service
        .as_ref()
        .and_then(|s| s.type_)
        .unwrap_or_default();
    if matches!(
        service_type,
        ServiceType::NodePort | ServiceType::LoadBalancer
    ) && !all_ports.is_empty()
    {
        // Node ports and load balancers forward from arbitrary client and node
        // addresses, so no peer list can describe the sources.
        ingress.push(NetworkPolicyIngressRule {
            from: None,
            ports: Some(all_ports.clone()),
        });
    }

    let network = spec.network.clone().unwrap_or_default();
    for (i, allow) in network.allow_from.iter().enumerate() {
        let field = format!("spec.network.allowFrom[{i}]");
        if allow.namespace_selector.is_none() && allow.pod_selector.is_none() {
            return Err(BuildError::EmptyPeer { field });
        }
        let ports = if allow.ports.is_empty() {
            all_ports.clone()
        } else {
            allow
                .ports
                .iter()
                .enumerate()
                .map(|(j, name)| {
                    find_port(spec, name, &format!("{field}.ports[{j}]")).map(policy_port)
                })
                .collect::<Result<Vec<_>, _>>()?
        };
        ingress.push(NetworkPolicyIngressRule {
            from: Some(vec![NetworkPolicyPeer {
                namespace_selector: allow.namespace_selector.clone(),
                pod_selector: allow.pod_selector.clone(),
                ip_block: None,
            }]),
            // No declared ports at all: the rule covers every port.
            ports: (!ports.is_empty()).then_some(ports),
        });
    }

    // DNS to any destination: where cluster DNS runs (kube-system CoreDNS, NodeLocal
    // DNSCache on a link-local address, a managed resolver) differs by cluster, and a
    // narrower rule that misses it breaks every name lookup.
    let mut egress = vec![NetworkPolicyEgressRule {
        to: None,
        ports: Some(vec![number_port(53, "UDP"), number_port(53, "TCP")]),
    }];

    for dependency in &ctx.dependencies {
        egress.push(NetworkPolicyEgressRule {
            to: Some(vec![pods_peer(
                &dependency.pod_selector,
                &dependency.namespace,
                &namespace,
            )]),
            ports: Some(vec![policy_port(&dependency.port)]),
        });
    }

    for rule in &network.egress {
        let ports: Vec<NetworkPolicyPort> = rule
            .ports
            .iter()
            .map(|p| number_port(p.port, protocol_str(p.protocol.unwrap_or_default())))
            .collect();
        egress.push(NetworkPolicyEgressRule {
            to: Some(
                rule.cidrs
                    .iter()
                    .map(|cidr| NetworkPolicyPeer {
                        ip_block: Some(IPBlock {
                            cidr: cidr.0.clone(),
                            except: None,
                        }),
                        ..NetworkPolicyPeer::default()
                    })
                    .collect(),
            ),
            ports: (!ports.is_empty()).then_some(ports),
        });
    }

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

/// The ingress controller's pods: the class's namespaceSelector, else its namespace
/// (default `ingress-nginx`) by name label; its podSelector, else every pod there.
fn controller_peer(controller: Option<&ControllerPeer>) -> NetworkPolicyPeer {
    let controller = controller.cloned().unwrap_or_default();
    let namespace_selector = controller.namespace_selector.unwrap_or_else(|| {
        let namespace = controller
            .namespace
            .unwrap_or_else(|| DEFAULT_CONTROLLER_NAMESPACE.to_string());
        LabelSelector {
            match_labels: Some(BTreeMap::from([(
                NAMESPACE_NAME_LABEL.to_string(),
                namespace,
            )])),
            match_expressions: None,
        }
    });
    NetworkPolicyPeer {
        namespace_selector: Some(namespace_selector),
        pod_selector: controller.pod_selector,
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
    NetworkPolicyPeer {
        pod_selector: Some(LabelSelector {
            match_labels: Some(pod_selector.clone()),
            match_expressions: None,
        }),
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
