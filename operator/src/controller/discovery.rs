//! What the server offers, found once at start-up: API versions by discovery, features
//! by the server's version (features have no API group to discover).

use kube::Client;
use kube::discovery::{Discovery, verbs};
use tracing::info;

use crate::api::KubeVersion;
use crate::builders::Capabilities;

const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

pub async fn capabilities(client: &Client) -> Result<Capabilities, kube::Error> {
    let discovery = Discovery::new(client.clone())
        .filter(&["autoscaling", "policy", GATEWAY_GROUP])
        .run()
        .await?;
    let serves = |group: &str, version: &str, kind: &str| {
        discovery.get(group).is_some_and(|g| {
            g.versioned_resources(version)
                .iter()
                .any(|(ar, caps)| ar.kind == kind && caps.supports_operation(verbs::PATCH))
        })
    };
    let info = client.apiserver_version().await?;
    let version = format!("{}.{}", info.major, info.minor)
        .parse::<KubeVersion>()
        .unwrap_or(KubeVersion::NEWEST);
    let autoscaling_v2 = serves("autoscaling", "v2", "HorizontalPodAutoscaler");
    let policy_v1 = serves("policy", "v1", "PodDisruptionBudget");
    if !autoscaling_v2 && !serves("autoscaling", "v2beta2", "HorizontalPodAutoscaler") {
        tracing::warn!(
            "the server serves neither autoscaling/v2 nor v2beta2: autoscaling will fail"
        );
    }
    // The Gateway API is installed as CRDs, in any version mix: the newest served wins.
    let http_route = ["v1", "v1beta1"]
        .into_iter()
        .find(|version| serves(GATEWAY_GROUP, version, "HTTPRoute"))
        .map(|version| match version {
            "v1" => "gateway.networking.k8s.io/v1",
            _ => "gateway.networking.k8s.io/v1beta1",
        });
    let capabilities = Capabilities {
        autoscaling_v2,
        policy_v1,
        grpc_probes: version.supports_grpc_probes(),
        sleep_action: version.supports_sleep_action(),
        http_route,
    };
    info!(
        server = %info.git_version,
        autoscaling = capabilities.autoscaling_api_version(),
        policy = capabilities.policy_api_version(),
        grpc_probes = capabilities.grpc_probes,
        sleep_action = capabilities.sleep_action,
        http_route = capabilities.http_route.unwrap_or("not served"),
        "discovered the API server"
    );
    Ok(capabilities)
}
