//! The Helm chart rendered offline (`helm template`, no cluster): RBAC by mode, the
//! hardened pod, leader election, the CRDs by server version, the ServiceMonitor. Runs in
//! `make unit` (with `$HELM` from `make tools`), not in the end-to-end tier.

use flotilla_e2e::helm::{LEASE, render, wildcard_rules};
use serde_json::Value;

fn find<'a>(docs: &'a [Value], kind: &str, name_suffix: &str) -> Option<&'a Value> {
    docs.iter().find(|d| {
        d["kind"] == kind
            && d["metadata"]["name"]
                .as_str()
                .is_some_and(|n| n.ends_with(name_suffix))
    })
}

fn kinds(docs: &[Value]) -> Vec<String> {
    docs.iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap_or("?"),
                d["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

fn args(deployment: &Value) -> Vec<String> {
    deployment["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// The operator's role grants every verb Flotilla uses on every registered child kind
/// (`flotilla::builders::KINDS`): a kind added without its RBAC rule fails here. Kinds
/// from separately installed CRDs (HTTPRoute) are granted whether or not they exist.
fn assert_manages_every_child_kind(role: &Value) {
    for kind in flotilla::builders::KINDS {
        // Always wanted under the Microservice's name: never deleted by the operator.
        let expected: &[&str] = if kind.plural == "serviceaccounts" {
            &CHILD_VERBS[..5]
        } else {
            &CHILD_VERBS
        };
        assert_eq!(
            verbs(role, kind.group, kind.plural),
            expected,
            "{} ({}/{})",
            kind.kind,
            kind.group,
            kind.plural
        );
    }
}

/// The verbs a Role or ClusterRole grants on `group`/`resource`, over all its rules.
fn verbs(role: &Value, group: &str, resource: &str) -> Vec<String> {
    let names = |rule: &Value, field: &str, want: &str| {
        rule[field]
            .as_array()
            .is_some_and(|v| v.iter().any(|x| x == want))
    };
    role["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| names(r, "apiGroups", group) && names(r, "resources", resource))
        .flat_map(|r| r["verbs"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

/// Watched, read once by name before the first apply, server-side applied (authorized
/// as create when it creates), deleted when no longer wanted; never updated.
const CHILD_VERBS: [&str; 6] = ["get", "list", "watch", "create", "patch", "delete"];

// What each mode renders: RBAC by mode without wildcards, leader election and a PDB with
// replicas, the hardened pod, the CRD picked by server version, the ServiceMonitor
// pointing at the metrics Service.
#[test]
fn chart_renders_each_mode() -> anyhow::Result<()> {
    let defaults = render(&["-n", "ops", "--kube-version", "1.20.2"])?;
    let namespaced = render(&[
        "-n",
        "ops",
        "--kube-version",
        "1.20.2",
        "--set",
        "rbac.scope=namespace",
    ])?;
    let ha = render(&[
        "-n",
        "ops",
        "--kube-version",
        "1.20.2",
        "--set",
        "replicas=2",
    ])?;
    let monitored = render(&[
        "-n",
        "ops",
        "--kube-version",
        "1.30.0",
        "--set",
        "serviceMonitor.enabled=true",
    ])?;

    for (mode, docs) in [
        ("defaults", &defaults),
        ("namespaced", &namespaced),
        ("ha", &ha),
        ("monitored", &monitored),
    ] {
        let wild = wildcard_rules(docs);
        assert!(wild.is_empty(), "{mode}: wildcard rules: {wild:?}");
        let deployment = find(docs, "Deployment", "flotilla").expect("a Deployment");
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true, "{mode}");
        assert_eq!(pod["securityContext"]["runAsUser"], 65532, "{mode}");
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"], "RuntimeDefault",
            "{mode}"
        );
        assert_eq!(pod["automountServiceAccountToken"], true, "{mode}");
        let sc = &container["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{mode}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{mode}");
        assert_eq!(
            sc["capabilities"]["drop"],
            serde_json::json!(["ALL"]),
            "{mode}"
        );
        for key in ["requests", "limits"] {
            assert!(
                container["resources"][key]["cpu"].is_string(),
                "{mode}: resources.{key}"
            );
            assert!(
                container["resources"][key]["memory"].is_string(),
                "{mode}: resources.{key}"
            );
        }
        assert_eq!(
            container["livenessProbe"]["httpGet"]["path"], "/healthz",
            "{mode}"
        );
        assert_eq!(
            container["readinessProbe"]["httpGet"]["path"], "/readyz",
            "{mode}"
        );
        assert_eq!(container["image"], "flotilla.local/flotilla:dev", "{mode}");
        assert_eq!(container["imagePullPolicy"], "IfNotPresent", "{mode}");
    }

    // Cluster mode: a ClusterRole for the operator, every namespace watched.
    let d = find(&defaults, "Deployment", "flotilla").unwrap();
    assert!(
        !args(d).iter().any(|a| a.starts_with("--namespace")),
        "{:?}",
        args(d)
    );
    assert!(
        !args(d).contains(&"--leader-elect".to_string()),
        "{:?}",
        args(d)
    );
    assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
    assert!(
        find(&defaults, "ClusterRoleBinding", "flotilla-ops").is_some(),
        "{:?}",
        kinds(&defaults)
    );
    assert!(
        find(&defaults, "PodDisruptionBudget", "").is_none(),
        "{:?}",
        kinds(&defaults)
    );
    // Classes: read cluster-wide; class status written by default (every namespace is
    // watched), with the operator's own default (no --class-status flag); every child
    // kind managed.
    let role = find(&defaults, "ClusterRole", "flotilla-ops").expect("the ClusterRole");
    assert_eq!(
        verbs(role, "flotilla.dev", "microserviceclasses"),
        ["list", "watch"]
    );
    assert_eq!(
        verbs(role, "flotilla.dev", "microserviceclasses/status"),
        ["patch"]
    );
    assert_manages_every_child_kind(role);
    // Namespace labels decide consent across namespaces: read, never written.
    assert_eq!(verbs(role, "", "namespaces"), ["list", "watch"]);
    assert!(
        !args(d).iter().any(|a| a.starts_with("--class-status")),
        "{:?}",
        args(d)
    );
    let quiet = render(&["-n", "ops", "--set", "classStatus=false"])?;
    let role = find(&quiet, "ClusterRole", "flotilla-ops").unwrap();
    assert!(verbs(role, "flotilla.dev", "microserviceclasses/status").is_empty());
    let d = find(&quiet, "Deployment", "flotilla").unwrap();
    assert!(
        args(d).contains(&"--class-status=false".to_string()),
        "{:?}",
        args(d)
    );
    // Users: view reads classes, edit and admin never write them.
    let view = find(&defaults, "ClusterRole", "-view").expect("the view ClusterRole");
    assert_eq!(
        verbs(view, "flotilla.dev", "microserviceclasses"),
        ["get", "list", "watch"]
    );
    let edit = find(&defaults, "ClusterRole", "-edit").expect("the edit ClusterRole");
    assert!(verbs(edit, "flotilla.dev", "microserviceclasses").is_empty());

    // Namespace mode: Role and RoleBinding in the namespace, --namespace; the one cluster
    // binding grants reading MicroserviceClasses (cluster-scoped), nothing else.
    let d = find(&namespaced, "Deployment", "flotilla").unwrap();
    assert!(
        args(d).contains(&"--namespace=ops".to_string()),
        "{:?}",
        args(d)
    );
    assert!(
        !args(d).iter().any(|a| a.starts_with("--class-status")),
        "{:?}",
        args(d)
    );
    let role = find(&namespaced, "Role", "flotilla").expect("a Role");
    assert_eq!(role["metadata"]["namespace"], "ops");
    assert_manages_every_child_kind(role);
    assert!(verbs(role, "flotilla.dev", "microserviceclasses").is_empty());
    assert!(
        verbs(role, "", "namespaces").is_empty(),
        "a namespaced operator reads no namespace"
    );
    let bindings: Vec<&Value> = namespaced
        .iter()
        .filter(|d| d["kind"] == "ClusterRoleBinding")
        .collect();
    assert_eq!(bindings.len(), 1, "{:?}", kinds(&namespaced));
    assert_eq!(bindings[0]["metadata"]["name"], "flotilla-ops-classes");
    assert_eq!(bindings[0]["roleRef"]["name"], "flotilla-ops-classes");
    let classes = find(&namespaced, "ClusterRole", "flotilla-ops-classes").expect("classes");
    assert_eq!(
        classes["rules"].as_array().map(Vec::len),
        Some(1),
        "read only, no class status by default: {classes}"
    );
    assert_eq!(
        verbs(classes, "flotilla.dev", "microserviceclasses"),
        ["list", "watch"]
    );
    // classStatus=true: the flag, and patch on the status subresource.
    let reporting = render(&[
        "-n",
        "ops",
        "--set",
        "rbac.scope=namespace",
        "--set",
        "classStatus=true",
    ])?;
    let d = find(&reporting, "Deployment", "flotilla").unwrap();
    assert!(
        args(d).contains(&"--class-status=true".to_string()),
        "{:?}",
        args(d)
    );
    let classes = find(&reporting, "ClusterRole", "flotilla-ops-classes").unwrap();
    assert_eq!(
        verbs(classes, "flotilla.dev", "microserviceclasses/status"),
        ["patch"]
    );
    // Secrets: list/watch for metadata-only watches, never get.
    assert_eq!(verbs(role, "", "secrets"), ["list", "watch"]);
    assert!(
        args(find(&namespaced, "Deployment", "flotilla").unwrap())
            .contains(&"--watch-secrets=true".to_string())
    );
    // watchSecrets=false: no access to Secrets at all, and the operator told so.
    let secretless = render(&[
        "-n",
        "ops",
        "--set",
        "rbac.scope=namespace",
        "--set",
        "watchSecrets=false",
    ])?;
    let role = find(&secretless, "Role", "flotilla").unwrap();
    assert!(verbs(role, "", "secrets").is_empty(), "{role}");
    // Config snapshots (on by default): create and delete the copies.
    assert_eq!(
        verbs(role, "", "configmaps"),
        ["list", "watch", "create", "delete"]
    );
    assert!(
        args(find(&secretless, "Deployment", "flotilla").unwrap())
            .contains(&"--watch-secrets=false".to_string())
    );
    // configSnapshots=false: ConfigMaps are only watched, and the operator told so.
    let copyless = render(&[
        "-n",
        "ops",
        "--set",
        "rbac.scope=namespace",
        "--set",
        "configSnapshots=false",
    ])?;
    let role = find(&copyless, "Role", "flotilla").unwrap();
    assert_eq!(verbs(role, "", "configmaps"), ["list", "watch"]);
    assert!(
        args(find(&copyless, "Deployment", "flotilla").unwrap())
            .contains(&"--config-snapshots=false".to_string())
    );

    // HA: leader election, a PDB (policy/v1beta1 on 1.20), the lease Role scoped by name.
    let d = find(&ha, "Deployment", "flotilla").unwrap();
    assert!(
        args(d).contains(&"--leader-elect".to_string()),
        "{:?}",
        args(d)
    );
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0);
    let pdb = find(&ha, "PodDisruptionBudget", "flotilla").expect("a PDB with replicas 2");
    assert_eq!(pdb["apiVersion"], "policy/v1beta1");
    let lease_role = find(&ha, "Role", "leader-election").expect("the lease Role");
    let rules = lease_role["rules"].as_array().unwrap();
    assert!(
        rules
            .iter()
            .all(|r| r["verbs"] == serde_json::json!(["create"])
                || r["resourceNames"] == serde_json::json!([LEASE])),
        "{rules:?}"
    );

    // Shards: a replica per shard, --shards and its leases, the lease Role scoped to the
    // shards' names, no single leader.
    let sharded = render(&["-n", "ops", "--set", "shards=3"])?;
    let d = find(&sharded, "Deployment", "flotilla").unwrap();
    assert_eq!(d["spec"]["replicas"], 3);
    let sharded_args = args(d);
    assert!(
        sharded_args.contains(&"--shards=3".to_string()),
        "{sharded_args:?}"
    );
    assert!(
        !sharded_args.contains(&"--leader-elect".to_string()),
        "{sharded_args:?}"
    );
    assert!(find(&sharded, "PodDisruptionBudget", "flotilla").is_some());
    let lease_role = find(&sharded, "Role", "leader-election").expect("the lease Role");
    assert!(
        lease_role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["resourceNames"]
                == serde_json::json!([
                    format!("{LEASE}-shard-0"),
                    format!("{LEASE}-shard-1"),
                    format!("{LEASE}-shard-2")
                ])),
        "{lease_role}"
    );

    // CRDs: both (Microservice and the cluster-scoped MicroserviceClass), CEL rules only
    // for 1.25+, kept on uninstall.
    for docs in [&defaults, &monitored] {
        let crds: Vec<(&str, &str)> = docs
            .iter()
            .filter(|d| d["kind"] == "CustomResourceDefinition")
            .map(|d| {
                (
                    d["metadata"]["name"].as_str().unwrap_or_default(),
                    d["spec"]["scope"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            crds,
            [
                ("microservices.flotilla.dev", "Namespaced"),
                ("microserviceclasses.flotilla.dev", "Cluster")
            ]
        );
    }
    let class_crd = find(
        &defaults,
        "CustomResourceDefinition",
        "microserviceclasses.flotilla.dev",
    )
    .unwrap();
    assert_eq!(
        class_crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let crd_old = find(&defaults, "CustomResourceDefinition", "flotilla.dev").unwrap();
    let crd_new = find(&monitored, "CustomResourceDefinition", "flotilla.dev").unwrap();
    assert!(!crd_old.to_string().contains("x-kubernetes-validations"));
    assert!(crd_new.to_string().contains("x-kubernetes-validations"));
    assert_eq!(
        crd_old["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    assert_eq!(
        find(&monitored, "PodDisruptionBudget", "").map(|p| p["apiVersion"].clone()),
        None
    );
    let ha_new = render(&["--kube-version", "1.30.0", "--set", "replicas=2"])?;
    assert_eq!(
        find(&ha_new, "PodDisruptionBudget", "flotilla").unwrap()["apiVersion"],
        "policy/v1"
    );

    // ServiceMonitor: scrapes the metrics Service's named port, selecting its labels.
    let sm = find(&monitored, "ServiceMonitor", "flotilla").expect("a ServiceMonitor");
    let svc = find(&monitored, "Service", "flotilla-metrics").expect("the metrics Service");
    assert_eq!(sm["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(
        sm["spec"]["endpoints"][0]["port"],
        svc["spec"]["ports"][0]["name"]
    );
    for (k, v) in sm["spec"]["selector"]["matchLabels"].as_object().unwrap() {
        assert_eq!(
            &svc["metadata"]["labels"][k], v,
            "ServiceMonitor selects {k}"
        );
    }
    assert!(find(&defaults, "ServiceMonitor", "").is_none());
    Ok(())
}
