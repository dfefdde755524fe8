//! A class's guardrails. A Microservice cannot override them; breaking one refuses the
//! whole Microservice (`PolicyViolation`) and leaves what runs as it was.

use kube::ResourceExt;

use crate::api::{
    ClassPolicy, MicroserviceClass, MicroserviceSpec, PodTemplate, PodTemplatePolicy,
    SecurityProfile,
};

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The class's rule, e.g. `allowedImageRegistries`.
    pub rule: &'static str,
    /// The Microservice field at fault, e.g. `spec.image`.
    pub field: String,
    pub message: String,
    /// The class that sets the rule.
    pub class: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} (policy.{} of MicroserviceClass {})",
            self.field, self.message, self.rule, self.class
        )
    }
}

/// Every rule of `class` that the Microservice breaks. `own` is its spec as written
/// (escape hatches and dependencies are judged on what the team wrote); `effective` has
/// the class's defaults merged in (images, replicas, requests, the Service type, the host
/// and the security profile are judged on what would run).
pub fn check_policy(
    own: &MicroserviceSpec,
    effective: &MicroserviceSpec,
    namespace: &str,
    class: &MicroserviceClass,
) -> Vec<Violation> {
    // Unset rules are not all permissive (baseline is refused unless allowed), so a class
    // without a policy is held to the unset one rather than to none.
    let policy = class.spec.policy.clone().unwrap_or_default();
    let class_name = class.name_any();
    let host_suffix = class
        .spec
        .expose
        .as_ref()
        .and_then(|e| e.host_suffix.as_deref());
    [
        registry_breaches(&policy, effective),
        max_replicas_breaches(&policy, effective),
        resource_request_breaches(&policy, effective),
        service_type_breaches(&policy, effective),
        egress_breaches(&policy, effective),
        allow_from_breaches(&policy, effective),
        host_suffix_breaches(class.spec.hosts_within_suffix(), host_suffix, effective),
        wildcard_host_breaches(&policy, effective),
        pod_template_breaches(&policy, own),
        priority_class_breaches(&policy, own),
        toleration_breaches(&policy, own),
        node_placement_breaches(&policy, own),
        pod_annotation_breaches(&policy, own),
        cross_namespace_breaches(&policy, own, namespace),
        baseline_breaches(&policy, effective),
    ]
    .into_iter()
    .flatten()
    .map(|breach| breach.of(&class_name))
    .collect()
}

/// A broken rule, before it is attributed to the class that sets it.
struct Breach {
    rule: &'static str,
    field: String,
    message: String,
}

impl Breach {
    fn new(rule: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Breach {
            rule,
            field: field.into(),
            message: message.into(),
        }
    }

    fn of(self, class: &str) -> Violation {
        Violation {
            rule: self.rule,
            field: self.field,
            message: self.message,
            class: class.to_string(),
        }
    }
}

fn registry_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let allowed = &policy.allowed_image_registries;
    if allowed.is_empty()
        || allowed
            .iter()
            .any(|prefix| image_matches(&effective.image, &prefix.0))
    {
        return Vec::new();
    }
    let allowed: Vec<&str> = allowed.iter().map(|p| p.0.as_str()).collect();
    vec![Breach::new(
        "allowedImageRegistries",
        "spec.image",
        format!(
            "image {} is not from an allowed registry ({})",
            effective.image,
            allowed.join(", ")
        ),
    )]
}

/// The fixed count is judged only without autoscaling, which makes it irrelevant; the
/// autoscaler's maximum is judged whenever there is one.
fn max_replicas_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let Some(max) = policy.max_replicas else {
        return Vec::new();
    };
    let mut breaches = Vec::new();
    if let Some(replicas) = effective.replicas.filter(|r| *r > max)
        && effective.autoscaling.is_none()
    {
        breaches.push(Breach::new(
            "maxReplicas",
            "spec.replicas",
            format!("{replicas} replicas exceed the class's maximum of {max}"),
        ));
    }
    if let Some(autoscaling) = effective
        .autoscaling
        .as_ref()
        .filter(|a| a.max_replicas > max)
    {
        breaches.push(Breach::new(
            "maxReplicas",
            "spec.autoscaling.maxReplicas",
            format!(
                "{} exceeds the class's maximum of {max} replicas",
                autoscaling.max_replicas
            ),
        ));
    }
    breaches
}

fn resource_request_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    if !policy.require_resource_requests {
        return Vec::new();
    }
    let requests = effective
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref());
    let amounts = [
        (
            "spec.resources.requests.cpu",
            requests.and_then(|r| r.cpu.as_ref()),
        ),
        (
            "spec.resources.requests.memory",
            requests.and_then(|r| r.memory.as_ref()),
        ),
    ];
    amounts
        .into_iter()
        .filter(|(_, amount)| amount.is_none())
        .map(|(field, _)| {
            Breach::new(
                "requireResourceRequests",
                field,
                "must be set: the class requires explicit CPU and memory requests",
            )
        })
        .collect()
}

fn service_type_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let allowed = &policy.allowed_service_types;
    let asked = effective.service.as_ref().and_then(|s| s.type_);
    let type_ = asked.unwrap_or_default();
    if allowed.is_empty() || allowed.contains(&type_) {
        return Vec::new();
    }
    let allowed: Vec<&str> = allowed.iter().map(|t| t.as_str()).collect();
    // An unset type is still at fault: the fix is to set one the class allows.
    let shown = match asked {
        Some(_) => type_.as_str().to_string(),
        None => format!("{} (the default)", type_.as_str()),
    };
    vec![Breach::new(
        "allowedServiceTypes",
        "spec.service.type",
        format!(
            "{shown} is not an allowed Service type ({})",
            allowed.join(", ")
        ),
    )]
}

/// The cloud metadata service's addresses (AWS, GCP, Azure, OpenStack share the IPv4 one;
/// AWS's IPv6 one): a workload there can read its node's credentials.
const METADATA_ADDRESSES: [&str; 2] = ["169.254.169.254", "fd00:ec2::254"];

/// Every `spec.network.egress` CIDR within the class's `egressCIDRs` (when set), and none
/// covering the metadata service unless an allowed network covers it too.
/// An allowFrom entry whose namespaceSelector asks a label for another value than
/// `policy.allowFromNamespaces` does can select none of the namespaces the class allows.
fn allow_from_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let Some(allowed) = policy
        .allow_from_namespaces
        .as_ref()
        .and_then(|s| s.match_labels.as_ref())
    else {
        return Vec::new();
    };
    let entries = effective.network.iter().flat_map(|n| &n.allow_from);
    let mut breaches = Vec::new();
    for (i, entry) in entries.enumerate() {
        let asked = entry
            .namespace_selector
            .as_ref()
            .and_then(|s| s.match_labels.as_ref());
        for (key, value) in asked.into_iter().flatten() {
            if let Some(wanted) = allowed.get(key).filter(|wanted| *wanted != value) {
                breaches.push(Breach::new(
                    "allowFromNamespaces",
                    format!("spec.network.allowFrom[{i}].namespaceSelector"),
                    format!(
                        "selects namespaces labelled {key}={value}; the class allows callers only from {key}={wanted}"
                    ),
                ));
            }
        }
    }
    breaches
}

fn egress_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let allowed: Vec<ipnet::IpNet> = policy
        .egress_cidrs
        .iter()
        .filter_map(|cidr| cidr.0.parse().ok())
        .collect();
    let listed = policy
        .egress_cidrs
        .iter()
        .map(|c| c.0.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let rules = effective.network.iter().flat_map(|n| &n.egress);
    let mut breaches = Vec::new();
    for (i, rule) in rules.enumerate() {
        for (j, cidr) in rule.cidrs.iter().enumerate() {
            // A malformed CIDR is validation's to name.
            let Ok(net) = cidr.0.parse::<ipnet::IpNet>() else {
                continue;
            };
            let field = format!("spec.network.egress[{i}].cidrs[{j}]");
            if !allowed.is_empty() && !allowed.iter().any(|a| a.contains(&net)) {
                breaches.push(Breach::new(
                    "egressCIDRs",
                    &field,
                    format!("{net} is not within the allowed networks ({listed})"),
                ));
                continue;
            }
            let metadata = METADATA_ADDRESSES
                .iter()
                .filter_map(|a| a.parse::<std::net::IpAddr>().ok())
                .find(|address| net.contains(address));
            if let Some(address) = metadata
                && !allowed.iter().any(|a| a.contains(&address))
            {
                breaches.push(Breach::new(
                    "egressCIDRs",
                    &field,
                    format!(
                        "{net} reaches the cloud metadata service {address}, which holds the node's credentials: name narrower networks, or have the class list one covering {address} in policy.egressCIDRs"
                    ),
                ));
            }
        }
    }
    breaches
}

/// Only an explicit `host` can leave the suffix: `hostPrefix` and the default host are
/// built on it.
fn host_suffix_breaches(
    held: bool,
    suffix: Option<&str>,
    effective: &MicroserviceSpec,
) -> Vec<Breach> {
    let Some(host) = explicit_host(effective).filter(|_| held) else {
        return Vec::new();
    };
    // The class is refused without a suffix before its policy is checked; failing closed
    // keeps a direct caller from reading that as "any host".
    let message = match suffix {
        Some(suffix) if host_within(host, suffix) => return Vec::new(),
        Some(suffix) => format!(
            "{host} is outside the class's domain {suffix}; use hostPrefix, or a host ending in .{suffix}"
        ),
        None => format!("{host} cannot be held to a domain: the class sets no expose.hostSuffix"),
    };
    vec![Breach::new(
        "hostsWithinSuffix",
        "spec.expose.http.host",
        message,
    )]
}

fn wildcard_host_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    let Some(host) = explicit_host(effective) else {
        return Vec::new();
    };
    match host.strip_prefix("*.") {
        Some(domain) if !policy.allow_wildcard_hosts => vec![Breach::new(
            "allowWildcardHosts",
            "spec.expose.http.host",
            format!(
                "{host} claims every host under {domain}; the class does not allow wildcard hosts"
            ),
        )],
        _ => Vec::new(),
    }
}

fn explicit_host(spec: &MicroserviceSpec) -> Option<&str> {
    spec.expose
        .as_ref()
        .and_then(|e| e.http.as_ref())
        .and_then(|http| http.host.as_deref())
}

/// Whether `host` is `suffix` or a name under it, on a label boundary:
/// `shop.apps.example.com` is within `apps.example.com`, `evilapps.example.com` is not.
pub fn host_within(host: &str, suffix: &str) -> bool {
    host == suffix
        || host
            .strip_suffix(suffix)
            .is_some_and(|rest| rest.ends_with('.'))
}

/// Judged on the written spec: class pod labels land in the effective podTemplate but
/// are not the team's.
fn pod_template_breaches(policy: &ClassPolicy, own: &MicroserviceSpec) -> Vec<Breach> {
    let uses_template = own
        .pod_template
        .as_ref()
        .is_some_and(|template| *template != Default::default());
    if policy.allow_pod_template != Some(false) || !uses_template {
        return Vec::new();
    }
    vec![Breach::new(
        "allowPodTemplate",
        "spec.podTemplate",
        "the class does not allow the podTemplate escape hatch",
    )]
}

/// The class's podTemplate limits and the podTemplate the team wrote, when both are set.
/// Judged on the written spec, like `allowPodTemplate`: the class's own pod annotations
/// land in the effective podTemplate but are not the team's.
fn limited_template<'a>(
    policy: &'a ClassPolicy,
    own: &'a MicroserviceSpec,
) -> Option<(&'a PodTemplatePolicy, &'a PodTemplate)> {
    Some((policy.pod_template.as_ref()?, own.pod_template.as_ref()?))
}

fn priority_class_breaches(policy: &ClassPolicy, own: &MicroserviceSpec) -> Vec<Breach> {
    let Some((limits, template)) = limited_template(policy, own) else {
        return Vec::new();
    };
    let allowed = &limits.priority_class_names;
    let Some(name) = template
        .priority_class_name
        .as_ref()
        .filter(|name| !allowed.contains(name))
    else {
        return Vec::new();
    };
    let message = if allowed.is_empty() {
        format!("PriorityClass {name} is not allowed: the class allows none")
    } else {
        format!(
            "PriorityClass {name} is not allowed ({})",
            allowed.join(", ")
        )
    };
    vec![Breach::new(
        "podTemplate.priorityClassNames",
        "spec.podTemplate.priorityClassName",
        message,
    )]
}

fn toleration_breaches(policy: &ClassPolicy, own: &MicroserviceSpec) -> Vec<Breach> {
    match limited_template(policy, own) {
        Some((limits, template))
            if !limits.allow_tolerations && !template.tolerations.is_empty() =>
        {
            vec![Breach::new(
                "podTemplate.allowTolerations",
                "spec.podTemplate.tolerations",
                "the class does not allow tolerations: they let pods onto tainted nodes",
            )]
        }
        _ => Vec::new(),
    }
}

fn node_placement_breaches(policy: &ClassPolicy, own: &MicroserviceSpec) -> Vec<Breach> {
    let Some((limits, template)) = limited_template(policy, own) else {
        return Vec::new();
    };
    if limits.allow_node_placement {
        return Vec::new();
    }
    let sets_affinity = template
        .affinity
        .as_ref()
        .is_some_and(|affinity| *affinity != Default::default());
    [
        (
            "spec.podTemplate.nodeSelector",
            !template.node_selector.is_empty(),
        ),
        ("spec.podTemplate.affinity", sets_affinity),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(field, _)| {
        Breach::new(
            "podTemplate.allowNodePlacement",
            field,
            "the class does not allow choosing the pods' nodes or neighbours",
        )
    })
    .collect()
}

fn pod_annotation_breaches(policy: &ClassPolicy, own: &MicroserviceSpec) -> Vec<Breach> {
    let Some((limits, template)) = limited_template(policy, own) else {
        return Vec::new();
    };
    let prefixes = &limits.annotation_prefixes;
    template
        .annotations
        .keys()
        .filter(|key| {
            !prefixes
                .iter()
                .any(|prefix| key.starts_with(prefix.as_str()))
        })
        .map(|key| {
            let message = if prefixes.is_empty() {
                format!("annotation {key} is not allowed: the class allows no pod annotations")
            } else {
                format!(
                    "annotation {key} does not start with an allowed prefix ({})",
                    prefixes.join(", ")
                )
            };
            Breach::new(
                "podTemplate.annotationPrefixes",
                format!("spec.podTemplate.annotations[{key}]"),
                message,
            )
        })
        .collect()
}

fn cross_namespace_breaches(
    policy: &ClassPolicy,
    own: &MicroserviceSpec,
    namespace: &str,
) -> Vec<Breach> {
    if policy.allow_cross_namespace_dependencies != Some(false) {
        return Vec::new();
    }
    own.depends_on
        .iter()
        .enumerate()
        .filter_map(|(i, dependency)| {
            let other = dependency
                .namespace
                .as_deref()
                .filter(|other| *other != namespace)?;
            Some(Breach::new(
                "allowCrossNamespaceDependencies",
                format!("spec.dependsOn[{i}].namespace"),
                format!(
                    "{other}/{} is in another namespace, which the class does not allow",
                    dependency.name
                ),
            ))
        })
        .collect()
}

fn baseline_breaches(policy: &ClassPolicy, effective: &MicroserviceSpec) -> Vec<Breach> {
    if !runs_baseline(effective) || policy.allow_baseline_security == Some(true) {
        return Vec::new();
    }
    vec![Breach::new(
        "allowBaselineSecurity",
        "spec.security.profile",
        "baseline is not allowed by the class; use restricted",
    )]
}

/// Without a class, `baseline` has no class to allow it: it is refused the same way.
pub fn classless_violations(effective: &MicroserviceSpec) -> Vec<String> {
    if runs_baseline(effective) {
        vec!["spec.security.profile: baseline needs a MicroserviceClass with policy.allowBaselineSecurity: true".to_string()]
    } else {
        Vec::new()
    }
}

fn runs_baseline(spec: &MicroserviceSpec) -> bool {
    spec.security.as_ref().and_then(|s| s.profile) == Some(SecurityProfile::Baseline)
}

/// Whether `image` starts with `prefix` on a segment boundary: `registry.example.com`
/// allows `registry.example.com/shop/users:1` but not `registry.example.com.evil.io/x`.
/// Images without a registry are Docker Hub's, as the container runtime reads them.
pub fn image_matches(image: &str, prefix: &str) -> bool {
    let normalized = normalize_image(image);
    [image, normalized.as_str()].into_iter().any(|candidate| {
        candidate == prefix
            || candidate.strip_prefix(prefix).is_some_and(|rest| {
                prefix.ends_with(['/', ':', '@']) || rest.starts_with(['/', ':', '@'])
            })
    })
}

/// The fully qualified form of an image reference: `nginx` is
/// `docker.io/library/nginx`, `acme/app` is `docker.io/acme/app`.
pub fn normalize_image(image: &str) -> String {
    match image.split_once('/') {
        None => format!("docker.io/library/{image}"),
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            image.to_string()
        }
        Some(_) => format!("docker.io/{image}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(yaml: &str) -> MicroserviceClass {
        let mut class: MicroserviceClass = serde_saphyr::from_str(&format!(
            "apiVersion: flotilla.dev/v1alpha1\nkind: MicroserviceClass\nmetadata: {{name: golden}}\nspec: {yaml}"
        ))
        .unwrap();
        class.metadata.name = Some("golden".into());
        class
    }

    fn spec(yaml: &str) -> MicroserviceSpec {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn rules(own: &str, class_spec: &str) -> Vec<(&'static str, String)> {
        let own = spec(own);
        check_policy(&own, &own, "shop", &class(class_spec))
            .into_iter()
            .map(|v| (v.rule, v.field))
            .collect()
    }

    #[test]
    fn allow_from_cannot_ask_for_namespaces_the_class_does_not_allow() {
        let class = "{policy: {allowFromNamespaces: {matchLabels: {tenant: shop}}}}";
        assert_eq!(
            rules(
                "{image: a, network: {allowFrom: [{podSelector: {}}, {namespaceSelector: {matchLabels: {tenant: bank}}}]}}",
                class
            ),
            vec![(
                "allowFromNamespaces",
                "spec.network.allowFrom[1].namespaceSelector".to_string()
            )]
        );
        for fine in [
            "{image: a, network: {allowFrom: [{namespaceSelector: {}}]}}",
            "{image: a, network: {allowFrom: [{namespaceSelector: {matchLabels: {tenant: shop, tier: web}}}]}}",
        ] {
            assert!(rules(fine, class).is_empty(), "{fine}");
        }
    }

    #[test]
    fn registries_match_whole_segments() {
        assert!(image_matches(
            "registry.example.com/shop/users:1",
            "registry.example.com"
        ));
        assert!(image_matches(
            "registry.example.com/shop/users:1",
            "registry.example.com/"
        ));
        assert!(image_matches(
            "registry.example.com/shop/users:1",
            "registry.example.com/shop/"
        ));
        assert!(!image_matches(
            "registry.example.com.evil.io/x:1",
            "registry.example.com"
        ));
        assert!(!image_matches(
            "registry.example.com/shopping/x",
            "registry.example.com/shop"
        ));
        assert!(image_matches("nginx:1.27", "docker.io/library/"));
        assert!(image_matches("acme/app", "docker.io/acme/"));
        assert!(!image_matches("nginx", "registry.example.com/"));
        assert!(image_matches("localhost:5000/app", "localhost:5000"));
    }

    #[test]
    fn registry_violation_names_rule_and_field() {
        let own = spec("{image: docker.io/library/nginx:1}");
        let violations = check_policy(
            &own,
            &own,
            "shop",
            &class("{policy: {allowedImageRegistries: [flotilla.local/, ghcr.io/acme/]}}"),
        );
        assert_eq!(violations.len(), 1);
        let text = violations[0].to_string();
        assert!(text.starts_with("spec.image: image docker.io/library/nginx:1 is not from an allowed registry (flotilla.local/, ghcr.io/acme/)"), "{text}");
        assert!(
            text.contains("policy.allowedImageRegistries of MicroserviceClass golden"),
            "{text}"
        );
        assert!(
            rules(
                "{image: flotilla.local/users:dev}",
                "{policy: {allowedImageRegistries: [flotilla.local/]}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn max_replicas_covers_fixed_and_autoscaled() {
        let policy = "{policy: {maxReplicas: 4}}";
        assert_eq!(
            rules("{image: a, replicas: 5}", policy),
            vec![("maxReplicas", "spec.replicas".to_string())]
        );
        assert!(rules("{image: a, replicas: 4}", policy).is_empty());
        assert_eq!(
            rules(
                "{image: a, autoscaling: {minReplicas: 1, maxReplicas: 10}}",
                policy
            ),
            vec![("maxReplicas", "spec.autoscaling.maxReplicas".to_string())]
        );
    }

    #[test]
    fn requests_must_be_explicit() {
        let policy = "{policy: {requireResourceRequests: true}}";
        assert_eq!(
            rules("{image: a, resources: {requests: {cpu: 100m}}}", policy),
            vec![(
                "requireResourceRequests",
                "spec.resources.requests.memory".to_string()
            )]
        );
        assert_eq!(rules("{image: a}", policy).len(), 2);
        assert!(
            rules(
                "{image: a, resources: {requests: {cpu: 100m, memory: 64Mi}}}",
                policy
            )
            .is_empty()
        );
    }

    #[test]
    fn requests_from_class_defaults_count() {
        let class = class(
            "{defaults: {resources: {requests: {cpu: 100m, memory: 64Mi}}}, policy: {requireResourceRequests: true}}",
        );
        let own = spec("{image: a}");
        let effective = crate::class::apply_defaults(&own, class.spec.defaults.as_ref().unwrap());
        assert!(check_policy(&own, &effective, "shop", &class).is_empty());
    }

    #[test]
    fn service_types_are_limited_when_listed() {
        let policy = "{policy: {allowedServiceTypes: [ClusterIP, NodePort]}}";
        let own =
            spec("{image: a, ports: [{name: http, port: 80}], service: {type: LoadBalancer}}");
        let violations = check_policy(&own, &own, "shop", &class(policy));
        assert_eq!(violations.len(), 1);
        let text = violations[0].to_string();
        assert_eq!(
            text,
            "spec.service.type: LoadBalancer is not an allowed Service type (ClusterIP, NodePort) (policy.allowedServiceTypes of MicroserviceClass golden)"
        );
        assert!(rules("{image: a, service: {type: NodePort}}", policy).is_empty());
        assert!(rules("{image: a}", policy).is_empty());
        assert!(rules("{image: a, service: {type: LoadBalancer}}", "{policy: {}}").is_empty());
    }

    #[test]
    fn an_unset_service_type_is_clusterip() {
        let own = spec("{image: a}");
        let violations = check_policy(
            &own,
            &own,
            "shop",
            &class("{policy: {allowedServiceTypes: [LoadBalancer]}}"),
        );
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "spec.service.type");
        assert!(
            violations[0]
                .message
                .starts_with("ClusterIP (the default) is not an allowed Service type"),
            "{}",
            violations[0]
        );
    }

    #[test]
    fn hosts_match_whole_labels() {
        assert!(host_within("apps.example.com", "apps.example.com"));
        assert!(host_within("shop.apps.example.com", "apps.example.com"));
        assert!(host_within("*.shop.apps.example.com", "apps.example.com"));
        assert!(!host_within("evilapps.example.com", "apps.example.com"));
        assert!(!host_within("apps.example.com.evil.io", "apps.example.com"));
        assert!(!host_within("example.com", "apps.example.com"));
    }

    #[test]
    fn hosts_within_suffix_holds_explicit_hosts_to_the_domain() {
        let policy = "{policy: {hostsWithinSuffix: true}, expose: {hostSuffix: apps.example.com}}";
        let own = spec(
            "{image: a, ports: [{name: http, port: 80}], expose: {http: {host: shop.example.com}}}",
        );
        let violations = check_policy(&own, &own, "shop", &class(policy));
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].to_string(),
            "spec.expose.http.host: shop.example.com is outside the class's domain apps.example.com; use hostPrefix, or a host ending in .apps.example.com (policy.hostsWithinSuffix of MicroserviceClass golden)"
        );
        for within in [
            "{image: a, expose: {http: {host: shop.apps.example.com}}}",
            "{image: a, expose: {http: {host: apps.example.com}}}",
            "{image: a, expose: {http: {hostPrefix: shop}}}",
            "{image: a, expose: {http: {}}}",
            "{image: a}",
        ] {
            assert!(rules(within, policy).is_empty(), "{within}");
        }
        // Held by default once the class has a suffix; a class may let hosts out.
        assert_eq!(
            rules(
                "{image: a, expose: {http: {host: shop.example.com}}}",
                "{policy: {}, expose: {hostSuffix: apps.example.com}}"
            ),
            vec![("hostsWithinSuffix", "spec.expose.http.host".to_string())]
        );
        assert!(
            rules(
                "{image: a, expose: {http: {host: shop.example.com}}}",
                "{policy: {hostsWithinSuffix: false}, expose: {hostSuffix: apps.example.com}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn hosts_within_suffix_without_a_suffix_refuses_every_explicit_host() {
        assert_eq!(
            rules(
                "{image: a, expose: {http: {host: shop.example.com}}}",
                "{policy: {hostsWithinSuffix: true}}"
            ),
            vec![("hostsWithinSuffix", "spec.expose.http.host".to_string())]
        );
    }

    #[test]
    fn wildcard_hosts_need_the_class() {
        let own = spec("{image: a, expose: {http: {host: '*.shop.example.com'}}}");
        for class_spec in ["{}", "{policy: {}}"] {
            let violations = check_policy(&own, &own, "shop", &class(class_spec));
            assert_eq!(violations.len(), 1, "{class_spec}");
            assert_eq!(
                violations[0].to_string(),
                "spec.expose.http.host: *.shop.example.com claims every host under shop.example.com; the class does not allow wildcard hosts (policy.allowWildcardHosts of MicroserviceClass golden)"
            );
        }
        assert!(
            rules(
                "{image: a, expose: {http: {host: '*.shop.example.com'}}}",
                "{policy: {allowWildcardHosts: true}}"
            )
            .is_empty()
        );
        assert!(rules("{image: a, expose: {http: {host: shop.example.com}}}", "{}").is_empty());
    }

    #[test]
    fn an_allowed_wildcard_still_lies_within_the_suffix() {
        let policy = "{policy: {allowWildcardHosts: true, hostsWithinSuffix: true}, expose: {hostSuffix: apps.example.com}}";
        assert!(
            rules(
                "{image: a, expose: {http: {host: '*.apps.example.com'}}}",
                policy
            )
            .is_empty()
        );
        assert_eq!(
            rules(
                "{image: a, expose: {http: {host: '*.example.com'}}}",
                policy
            ),
            vec![("hostsWithinSuffix", "spec.expose.http.host".to_string())]
        );
    }

    #[test]
    fn pod_template_is_judged_on_the_written_spec() {
        let policy = "{policy: {allowPodTemplate: false}}";
        assert_eq!(
            rules(
                "{image: a, podTemplate: {nodeSelector: {disk: ssd}}}",
                policy
            ),
            vec![("allowPodTemplate", "spec.podTemplate".to_string())]
        );
        assert!(rules("{image: a}", policy).is_empty());
        // Class pod labels land in the effective podTemplate; they are not the team's.
        let class = class("{defaults: {podLabels: {team: x}}, policy: {allowPodTemplate: false}}");
        let own = spec("{image: a}");
        let effective = crate::class::apply_defaults(&own, class.spec.defaults.as_ref().unwrap());
        assert!(check_policy(&own, &effective, "shop", &class).is_empty());
    }

    #[test]
    fn priority_classes_are_limited_to_the_listed_ones() {
        let policy = "{policy: {podTemplate: {priorityClassNames: [standard, batch]}}}";
        let own = spec("{image: a, podTemplate: {priorityClassName: system-cluster-critical}}");
        let violations = check_policy(&own, &own, "shop", &class(policy));
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].to_string(),
            "spec.podTemplate.priorityClassName: PriorityClass system-cluster-critical is not allowed (standard, batch) (policy.podTemplate.priorityClassNames of MicroserviceClass golden)"
        );
        assert!(
            rules(
                "{image: a, podTemplate: {priorityClassName: batch}}",
                policy
            )
            .is_empty()
        );
        assert!(rules("{image: a, podTemplate: {labels: {a: b}}}", policy).is_empty());
        let none = rules(
            "{image: a, podTemplate: {priorityClassName: batch}}",
            "{policy: {podTemplate: {}}}",
        );
        assert_eq!(
            none,
            vec![(
                "podTemplate.priorityClassNames",
                "spec.podTemplate.priorityClassName".to_string()
            )]
        );
    }

    #[test]
    fn tolerations_need_the_class() {
        let own = "{image: a, podTemplate: {tolerations: [{key: dedicated, operator: Exists}]}}";
        let violations = check_policy(
            &spec(own),
            &spec(own),
            "shop",
            &class("{policy: {podTemplate: {}}}"),
        );
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].to_string(),
            "spec.podTemplate.tolerations: the class does not allow tolerations: they let pods onto tainted nodes (policy.podTemplate.allowTolerations of MicroserviceClass golden)"
        );
        assert!(rules(own, "{policy: {podTemplate: {allowTolerations: true}}}").is_empty());
    }

    #[test]
    fn node_placement_needs_the_class() {
        let own = "{image: a, podTemplate: {nodeSelector: {disk: ssd}, affinity: {podAntiAffinity: {preferredDuringSchedulingIgnoredDuringExecution: [{weight: 1, podAffinityTerm: {topologyKey: kubernetes.io/hostname}}]}}}}";
        assert_eq!(
            rules(own, "{policy: {podTemplate: {}}}"),
            vec![
                (
                    "podTemplate.allowNodePlacement",
                    "spec.podTemplate.nodeSelector".to_string()
                ),
                (
                    "podTemplate.allowNodePlacement",
                    "spec.podTemplate.affinity".to_string()
                ),
            ]
        );
        let violations = check_policy(
            &spec(own),
            &spec(own),
            "shop",
            &class("{policy: {podTemplate: {}}}"),
        );
        assert!(
            violations[0]
                .to_string()
                .ends_with("(policy.podTemplate.allowNodePlacement of MicroserviceClass golden)"),
            "{}",
            violations[0]
        );
        assert!(rules(own, "{policy: {podTemplate: {allowNodePlacement: true}}}").is_empty());
        assert!(
            rules(
                "{image: a, podTemplate: {affinity: {}}}",
                "{policy: {podTemplate: {}}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn pod_annotations_must_carry_an_allowed_prefix() {
        let policy = "{policy: {podTemplate: {annotationPrefixes: [prometheus.io/]}}}";
        let own = spec(
            "{image: a, podTemplate: {annotations: {prometheus.io/scrape: 'true', sidecar.istio.io/inject: 'false'}}}",
        );
        let violations = check_policy(&own, &own, "shop", &class(policy));
        assert_eq!(violations.len(), 1);
        assert_eq!(
            violations[0].to_string(),
            "spec.podTemplate.annotations[sidecar.istio.io/inject]: annotation sidecar.istio.io/inject does not start with an allowed prefix (prometheus.io/) (policy.podTemplate.annotationPrefixes of MicroserviceClass golden)"
        );
        assert!(
            rules(
                "{image: a, podTemplate: {annotations: {prometheus.io/port: '9090'}}}",
                policy
            )
            .is_empty()
        );
        assert_eq!(
            rules(
                "{image: a, podTemplate: {annotations: {prometheus.io/port: '9090'}}}",
                "{policy: {podTemplate: {}}}"
            ),
            vec![(
                "podTemplate.annotationPrefixes",
                "spec.podTemplate.annotations[prometheus.io/port]".to_string()
            )]
        );
    }

    #[test]
    fn pod_template_limits_judge_the_written_spec_only() {
        // The class's own pod annotations land in the effective podTemplate.
        let class = class(
            "{defaults: {podAnnotations: {sidecar.istio.io/inject: 'true'}}, policy: {podTemplate: {}}}",
        );
        let own = spec("{image: a}");
        let effective = crate::class::apply_defaults(&own, class.spec.defaults.as_ref().unwrap());
        assert!(check_policy(&own, &effective, "shop", &class).is_empty());
    }

    #[test]
    fn without_pod_template_limits_any_pod_template_passes() {
        assert!(
            rules(
                "{image: a, podTemplate: {priorityClassName: high, tolerations: [{key: k, operator: Exists}], nodeSelector: {a: b}, annotations: {x: y}}}",
                "{policy: {}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn cross_namespace_dependencies() {
        let policy = "{policy: {allowCrossNamespaceDependencies: false}}";
        assert_eq!(
            rules(
                "{image: a, dependsOn: [{name: b}, {name: c, namespace: shop}, {name: d, namespace: other}]}",
                policy
            ),
            vec![(
                "allowCrossNamespaceDependencies",
                "spec.dependsOn[2].namespace".to_string()
            )]
        );
        assert!(rules("{image: a, dependsOn: [{name: d, namespace: other}]}", "{}").is_empty());
    }

    #[test]
    fn baseline_needs_the_class() {
        let own = "{image: a, security: {profile: baseline}}";
        assert_eq!(
            rules(own, "{policy: {}}"),
            vec![("allowBaselineSecurity", "spec.security.profile".to_string())]
        );
        assert!(rules(own, "{policy: {allowBaselineSecurity: true}}").is_empty());
        // A class without a policy allows no more than one with an empty policy.
        assert_eq!(
            rules(own, "{}"),
            vec![("allowBaselineSecurity", "spec.security.profile".to_string())]
        );
        assert_eq!(classless_violations(&spec(own)).len(), 1);
        assert!(classless_violations(&spec("{image: a}")).is_empty());
    }

    #[test]
    fn fixed_replicas_are_not_judged_under_autoscaling() {
        assert!(
            rules(
                "{image: a, replicas: 9, autoscaling: {minReplicas: 1, maxReplicas: 4}}",
                "{policy: {maxReplicas: 4}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn an_empty_pod_template_is_no_escape_hatch() {
        assert!(
            rules(
                "{image: a, podTemplate: {}}",
                "{policy: {allowPodTemplate: false}}"
            )
            .is_empty()
        );
    }

    #[test]
    fn egress_stays_within_the_allowed_networks_and_off_the_metadata_service() {
        let egress =
            |cidrs: &str| format!("{{image: a, network: {{egress: [{{cidrs: {cidrs}}}]}}}}");
        // Under any class: the metadata service only when a listed network covers it.
        assert_eq!(
            rules(
                &egress("['10.0.0.0/8', '0.0.0.0/0', '169.254.169.254/32', '::/0']"),
                "{}"
            ),
            [
                ("egressCIDRs", "spec.network.egress[0].cidrs[1]".to_string()),
                ("egressCIDRs", "spec.network.egress[0].cidrs[2]".to_string()),
                ("egressCIDRs", "spec.network.egress[0].cidrs[3]".to_string()),
            ]
        );
        let own = spec(&egress("['0.0.0.0/0']"));
        let message = check_policy(&own, &own, "shop", &class("{}"))[0].to_string();
        assert!(message.contains("169.254.169.254"), "{message}");
        // With allowed networks: within them only, and the metadata service if listed.
        let allowed = "{policy: {egressCIDRs: ['10.20.0.0/16', '169.254.169.254/32']}}";
        assert_eq!(
            rules(
                &egress("['10.20.30.0/24', '169.254.169.254/32', '10.0.0.0/8']"),
                allowed
            ),
            [("egressCIDRs", "spec.network.egress[0].cidrs[2]".to_string())]
        );
        assert!(rules(&egress("['10.20.0.0/16']"), allowed).is_empty());
    }

    #[test]
    fn violations_come_in_rule_order() {
        let everything = "{policy: {allowedImageRegistries: [flotilla.local/], maxReplicas: 2, requireResourceRequests: true, allowedServiceTypes: [ClusterIP], hostsWithinSuffix: true, allowPodTemplate: false, podTemplate: {}, allowCrossNamespaceDependencies: false}, expose: {hostSuffix: apps.example.com}}";
        assert_eq!(
            rules(
                "{image: evil.io/x, replicas: 3, service: {type: NodePort}, expose: {http: {host: '*.evil.io'}}, podTemplate: {nodeSelector: {a: b}}, dependsOn: [{name: d, namespace: other}, {name: e, namespace: third}], security: {profile: baseline}}",
                everything
            ),
            vec![
                ("allowedImageRegistries", "spec.image".to_string()),
                ("maxReplicas", "spec.replicas".to_string()),
                (
                    "requireResourceRequests",
                    "spec.resources.requests.cpu".to_string()
                ),
                (
                    "requireResourceRequests",
                    "spec.resources.requests.memory".to_string()
                ),
                ("allowedServiceTypes", "spec.service.type".to_string()),
                ("hostsWithinSuffix", "spec.expose.http.host".to_string()),
                ("allowWildcardHosts", "spec.expose.http.host".to_string()),
                ("allowPodTemplate", "spec.podTemplate".to_string()),
                (
                    "podTemplate.allowNodePlacement",
                    "spec.podTemplate.nodeSelector".to_string()
                ),
                (
                    "allowCrossNamespaceDependencies",
                    "spec.dependsOn[0].namespace".to_string()
                ),
                (
                    "allowCrossNamespaceDependencies",
                    "spec.dependsOn[1].namespace".to_string()
                ),
                ("allowBaselineSecurity", "spec.security.profile".to_string()),
            ]
        );
    }

    #[test]
    fn no_policy_no_violation() {
        assert!(
            rules(
                "{image: anything, replicas: 1000, security: {profile: restricted}}",
                "{}"
            )
            .is_empty()
        );
    }
}
