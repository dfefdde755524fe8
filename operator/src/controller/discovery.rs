//! What the server offers, found once at start-up: for each child kind, the first of its
//! versions the server serves (by discovery, never by assumption); features by the
//! server's version (features have no API group to discover).

use std::collections::BTreeSet;

use kube::Client;
use kube::discovery::{Discovery, verbs};
use tracing::{info, warn};

use crate::api::KubeVersion;
use crate::builders::{Capabilities, KINDS};

pub async fn capabilities(client: &Client) -> Result<Capabilities, kube::Error> {
    let groups: BTreeSet<&str> = KINDS.iter().map(|kind| kind.group).collect();
    let groups: Vec<&str> = groups.into_iter().collect();
    let discovery = Discovery::new(client.clone()).filter(&groups).run().await?;
    let serves = |group: &str, version: &str, kind: &str| {
        discovery.get(group).is_some_and(|g| {
            g.versioned_resources(version)
                .iter()
                .any(|(ar, caps)| ar.kind == kind && caps.supports_operation(verbs::PATCH))
        })
    };
    let info = client.apiserver_version().await?;
    let server = format!("{}.{}", info.major, info.minor)
        .parse::<KubeVersion>()
        .unwrap_or(KubeVersion::NEWEST);
    let mut capabilities = Capabilities::features_of(server);
    for kind in KINDS {
        match kind
            .versions
            .iter()
            .find(|v| serves(kind.group, v.version, kind.kind))
        {
            Some(found) => {
                capabilities = capabilities.with_served(kind, found.version);
                info!(
                    kind = kind.kind,
                    api_version = kind.api_version(found.version),
                    "served"
                );
            }
            None if kind.is_installed_separately() => {
                info!(
                    kind = kind.kind,
                    "not installed: Microservices go without it"
                )
            }
            None => warn!(
                kind = kind.kind,
                "not served in any version Flotilla writes: Microservices that need one will fail to apply"
            ),
        }
    }
    info!(
        server = %info.git_version,
        grpc_probes = capabilities.grpc_probes,
        sleep_action = capabilities.sleep_action,
        "discovered the API server"
    );
    Ok(capabilities)
}
