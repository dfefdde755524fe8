//! Smoke test of the cluster and the harness the operator scenarios build on: a
//! Deployment of the testapp image behind a Service answers from the host through its
//! ClusterIP, and a second workload reaches it by DNS name from inside its pod.

use std::time::Duration;

use flotilla_e2e::{Poll, TestNamespace, apply_yaml, client, wait_for, wait_http};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::Api;

const READY_DEADLINE: Duration = Duration::from_secs(120);

fn testapp(name: &str, extra_env: &str) -> String {
    format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {{name: {name}, labels: {{app: {name}}}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      terminationGracePeriodSeconds: 5
      securityContext: {{runAsNonRoot: true, runAsUser: 65532}}
      containers:
      - name: app
        image: flotilla.local/testapp:v1
        imagePullPolicy: IfNotPresent
        ports: [{{name: http, containerPort: 8080, protocol: TCP}}]
        env:
        - {{name: SERVICE_NAME, value: {name}}}
{extra_env}
        readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}, periodSeconds: 1}}
---
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
  selector: {{app: {name}}}
  ports: [{{name: http, port: 8080, targetPort: 8080, protocol: TCP}}]
"#
    )
}

async fn wait_deployment_ready(api: &Api<Deployment>, name: &str) -> anyhow::Result<()> {
    wait_for(
        format!("Deployment {name} to be available"),
        READY_DEADLINE,
        || async move {
            let d = api.get(name).await?;
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.unwrap_or_default();
            let ready = status.ready_replicas.unwrap_or(0);
            let updated = status.updated_replicas.unwrap_or(0);
            Ok(if ready == want && updated == want {
                Poll::Ready(())
            } else {
                Poll::Pending(format!(
                    "replicas {want}, updated {updated}, ready {ready}, conditions {:?}",
                    status
                        .conditions
                        .unwrap_or_default()
                        .iter()
                        .map(|c| format!(
                            "{}={} ({})",
                            c.type_,
                            c.status,
                            c.message.clone().unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                ))
            })
        },
    )
    .await
}

/// What the users service answers.
fn from_users(body: &str) -> bool {
    body.contains(r#""service":"users""#)
}

#[tokio::test]
async fn testapp_answers_by_cluster_ip_and_by_dns_from_another_pod() -> anyhow::Result<()> {
    let client = client().await?;
    let ns = TestNamespace::new(&client, "e2e-cluster").await?;
    let n = ns.name();

    apply_yaml(n, &testapp("users", ""))?;
    apply_yaml(
        n,
        &testapp(
            "frontend",
            &format!(
                "        - {{name: USERS_URL, value: 'http://users.{n}.svc.cluster.local:8080/'}}\n        - {{name: USERS_SHORT_URL, value: 'http://users:8080/'}}"
            ),
        ),
    )?;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), n);
    wait_deployment_ready(&deployments, "users").await?;
    wait_deployment_ready(&deployments, "frontend").await?;

    let services: Api<Service> = Api::namespaced(client.clone(), n);
    let ip_of = |svc: Service| {
        svc.spec
            .and_then(|s| s.cluster_ip)
            .filter(|ip| ip != "None")
            .ok_or_else(|| anyhow::anyhow!("Service has no ClusterIP"))
    };
    let users_ip = ip_of(services.get("users").await?)?;
    let frontend_ip = ip_of(services.get("frontend").await?)?;

    // From the host, through kube-proxy.
    let body = wait_http(&format!("http://{users_ip}:8080/"), "users", from_users).await?;
    assert!(body.contains(r#""version":"v1""#), "{body}");

    // From inside the frontend pod, by the Service's full DNS name and by the short name
    // through the pod's search path.
    let body = wait_http(
        &format!("http://{frontend_ip}:8080/call/USERS_URL"),
        "users by its full DNS name",
        from_users,
    )
    .await?;
    assert!(body.contains(r#""version":"v1""#), "{body}");
    wait_http(
        &format!("http://{frontend_ip}:8080/call/USERS_SHORT_URL"),
        "users by its short name",
        from_users,
    )
    .await?;
    Ok(())
}
