//! What the fault suite needs from the embedded cluster: stopping one of its components,
//! compacting etcd, reading the API server's audit log, and operators that authenticate
//! as their own ServiceAccounts (so the audit log tells their writes apart and RBAC can
//! refuse one of them).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::config::Kubeconfig;
use serde::Deserialize;

use crate::{Poll, wait_for};

/// Whether the suite runs on the embedded cluster (the only one whose control plane it
/// can stop and whose audit log it can read).
pub fn on_embedded_cluster() -> bool {
    std::env::var("CLUSTER").as_deref() != Ok("kind")
}

/// Runs `e2e/cluster/component.sh ARGS` and returns its standard output.
pub fn component(args: &[&str]) -> anyhow::Result<String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/component.sh");
    let output = Command::new(script).args(args).output()?;
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    anyhow::ensure!(
        output.status.success(),
        "component.sh {args:?} failed ({})",
        output.status
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

fn cluster_dir() -> PathBuf {
    std::env::var_os("CLUSTER_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/flotilla/cluster")
        })
}

/// One write the API server audited (see the policy in `e2e/cluster/up.sh`).
#[derive(Clone, Debug)]
pub struct Write {
    pub user: String,
    pub verb: String,
    pub resource: String,
    /// `status` for a status write; empty for the object itself.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub code: u16,
    /// When the API server received it.
    pub received: Timestamp,
    /// When it answered.
    pub completed: Timestamp,
}

impl Write {
    /// Accepted: it changed the cluster.
    pub fn succeeded(&self) -> bool {
        self.code < 300
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditEvent {
    verb: String,
    user: AuditUser,
    #[serde(default)]
    object_ref: Option<AuditObject>,
    #[serde(default)]
    response_status: Option<AuditStatus>,
    request_received_timestamp: Timestamp,
    stage_timestamp: Timestamp,
}

#[derive(Deserialize)]
struct AuditUser {
    username: String,
}

#[derive(Deserialize, Default)]
struct AuditObject {
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
struct AuditStatus {
    #[serde(default)]
    code: u16,
}

fn audit_log_path() -> PathBuf {
    cluster_dir().join("logs/audit.log")
}

const WRITE_VERBS: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// One request the API server audited, of any verb.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Request {
    pub user: String,
    pub verb: String,
    /// Empty for the core group.
    pub group: String,
    /// `resource` or `resource/subresource`.
    pub resource: String,
    pub code: u16,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AuditedRequest {
    verb: String,
    user: AuditUser,
    #[serde(default)]
    object_ref: Option<AuditedObject>,
    #[serde(default)]
    response_status: Option<AuditStatus>,
    request_received_timestamp: Timestamp,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct AuditedObject {
    #[serde(default)]
    api_group: String,
    #[serde(default)]
    resource: String,
    #[serde(default)]
    subresource: String,
}

/// Every audited request on a resource (not `/apis` and the like) received at or after
/// `since` by a user `user` accepts, from the audit log and its rotated backup.
pub fn audited_requests(
    since: Timestamp,
    user: impl Fn(&str) -> bool,
) -> anyhow::Result<Vec<Request>> {
    let logs = cluster_dir().join("logs");
    let mut requests = Vec::new();
    for entry in std::fs::read_dir(&logs).with_context(|| format!("reading {}", logs.display()))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if !(name.starts_with("audit") && name.ends_with(".log")) {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        requests.extend(
            text.lines()
                .filter(|line| line.contains("system:serviceaccount:"))
                .filter_map(|line| serde_json::from_str::<AuditedRequest>(line).ok())
                .filter(|event| {
                    event.request_received_timestamp >= since && user(&event.user.username)
                })
                .filter_map(|event| {
                    let object = event.object_ref?;
                    (!object.resource.is_empty()).then(|| Request {
                        user: event.user.username,
                        verb: event.verb,
                        group: object.api_group,
                        resource: if object.subresource.is_empty() {
                            object.resource
                        } else {
                            format!("{}/{}", object.resource, object.subresource)
                        },
                        code: event.response_status.map_or(0, |s| s.code),
                    })
                }),
        );
    }
    Ok(requests)
}

/// Every audited write by `users`.
pub fn audited_writes(users: &[&str]) -> anyhow::Result<Vec<Write>> {
    let mut tail = AuditTail::from_start(users);
    tail.read()?;
    Ok(tail.writes)
}

/// The audit log read as it grows: each [`AuditTail::read`] parses only what was
/// written since the last one (a benchmark polls it while the log holds hundreds of MB).
pub struct AuditTail {
    users: Vec<String>,
    offset: u64,
    /// Every write by the users read so far, in the log's order.
    pub writes: Vec<Write>,
}

impl AuditTail {
    /// Reads the log from its beginning.
    pub fn from_start(users: &[&str]) -> Self {
        Self {
            users: users.iter().map(|u| u.to_string()).collect(),
            offset: 0,
            writes: Vec::new(),
        }
    }

    /// Reads only what is written from now on.
    pub fn from_now(users: &[&str]) -> anyhow::Result<Self> {
        let mut tail = Self::from_start(users);
        tail.offset = std::fs::metadata(audit_log_path())
            .with_context(|| format!("reading {}", audit_log_path().display()))?
            .len();
        Ok(tail)
    }

    /// Appends the writes logged since the last read; returns how many there were.
    pub fn read(&mut self) -> anyhow::Result<usize> {
        use std::io::{Read, Seek, SeekFrom};
        let path = audit_log_path();
        let mut file = std::fs::File::open(&path).with_context(|| {
            format!(
                "reading {} (a cluster started before the audit log existed: make cluster-down cluster)",
                path.display()
            )
        })?;
        // Rotated (--audit-log-maxsize): the new file starts over.
        if file.metadata()?.len() < self.offset {
            self.offset = 0;
        }
        file.seek(SeekFrom::Start(self.offset))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Only whole lines: the API server may be writing the last one.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.offset += complete as u64;
        let text = String::from_utf8_lossy(&bytes[..complete]);
        let before = self.writes.len();
        let users = &self.users;
        self.writes.extend(
            text.lines()
                // Most lines are other users': skip them before parsing.
                .filter(|line| users.iter().any(|u| line.contains(u.as_str())))
                .filter_map(|line| serde_json::from_str::<AuditEvent>(line).ok())
                .filter(|event| users.contains(&event.user.username))
                // The policy logs ServiceAccounts' reads too (for the RBAC audit).
                .filter(|event| WRITE_VERBS.contains(&event.verb.as_str()))
                .map(|event| {
                    let object = event.object_ref.unwrap_or_default();
                    Write {
                        user: event.user.username,
                        verb: event.verb,
                        resource: object.resource,
                        subresource: object.subresource,
                        namespace: object.namespace,
                        name: object.name,
                        code: event.response_status.map_or(0, |s| s.code),
                        received: event.request_received_timestamp,
                        completed: event.stage_timestamp,
                    }
                }),
        );
        Ok(self.writes.len() - before)
    }
}

/// A ClusterRole `role` granting everything an operator of one namespace writes but
/// Leases, bound to the ServiceAccounts `accounts` (namespace, name). RBAC cannot take
/// one resource out of a wildcard, so a Lease grant, when wanted, is a separate Role.
pub fn operator_rbac(role: &str, accounts: &[(&str, &str)]) -> String {
    let subjects: String = accounts
        .iter()
        .map(|(namespace, name)| {
            format!("- {{kind: ServiceAccount, name: {name}, namespace: {namespace}}}\n")
        })
        .collect();
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: {role}
rules:
- apiGroups: ['', apps, autoscaling, policy, networking.k8s.io, flotilla.dev, events.k8s.io]
  resources: ['*']
  verbs: ['*']
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {role}
roleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}
subjects:
{subjects}"
    )
}

/// The user name a ServiceAccount authenticates as.
pub fn service_account_user(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Creates the ServiceAccount `name` and writes a kubeconfig that authenticates as it
/// (its token Secret, which 1.20 creates by itself) to the same server as `$KUBECONFIG`.
pub async fn service_account_kubeconfig(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<PathBuf> {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let account: ServiceAccount = serde_json::from_value(serde_json::json!({
        "metadata": {"name": name}
    }))?;
    accounts.create(&Default::default(), &account).await?;
    let secrets = Api::<Secret>::namespaced(client.clone(), namespace);
    let token = wait_for(
        format!("the token Secret of ServiceAccount {name}"),
        std::time::Duration::from_secs(30),
        || async {
            let account = accounts.get(name).await?;
            let Some(secret) = account
                .secrets
                .unwrap_or_default()
                .into_iter()
                .find_map(|s| s.name)
            else {
                return Ok(Poll::Pending("no Secret listed yet".into()));
            };
            let secret = secrets.get(&secret).await?;
            Ok(match secret.data.and_then(|d| d.get("token").cloned()) {
                Some(token) => Poll::Ready(String::from_utf8(token.0)?),
                None => Poll::Pending("the Secret has no token yet".into()),
            })
        },
    )
    .await?;
    let mut config = Kubeconfig::read()?;
    for auth in &mut config.auth_infos {
        if let Some(info) = auth.auth_info.as_mut() {
            *info = serde_json::from_value(serde_json::json!({ "token": token }))?;
        }
    }
    let path = std::env::temp_dir().join(format!("{namespace}-{name}.kubeconfig"));
    std::fs::write(&path, flotilla::yaml::to_string(&config)?)?;
    Ok(path)
}

/// The sum of a Prometheus metric's samples whose line starts with `prefix` (a name, or a
/// name and labels), from the operator's `/metrics` at `addr`.
pub async fn metric(addr: &str, prefix: &str) -> anyhow::Result<f64> {
    let body = crate::http_get(&format!("http://{addr}/metrics"))
        .await?
        .body;
    Ok(body
        .lines()
        .filter(|line| line.starts_with(prefix))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
