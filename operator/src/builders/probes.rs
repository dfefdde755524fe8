//! Readiness, liveness and startup probes: explicit ones as given, defaults on the
//! primary port otherwise.

use k8s_openapi::api::core::v1::{GRPCAction, HTTPGetAction, HTTPHeader, Probe, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::{BuildError, Capabilities, container_port, find_port};
use crate::api::{self, MicroserviceSpec, Port};

/// The three probes of the container.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ContainerProbes {
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    pub startup: Option<Probe>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Readiness,
    Liveness,
    Startup,
}

impl Which {
    fn field(self) -> &'static str {
        match self {
            Which::Readiness => "spec.probes.readiness",
            Which::Liveness => "spec.probes.liveness",
            Which::Startup => "spec.probes.startup",
        }
    }

    fn default_path(self) -> &'static str {
        match self {
            Which::Readiness => "/readyz",
            Which::Liveness | Which::Startup => "/healthz",
        }
    }
}

/// The probe kind a port gets when the probe names none: HTTP for http-like
/// appProtocols, gRPC for grpc where the server supports it, TCP otherwise (https is TCP
/// because an HTTP probe would need the scheme and a certificate the kubelet ignores).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProbeKind {
    Http,
    Grpc,
    Tcp,
}

pub fn default_kind(port: &Port, caps: &Capabilities) -> ProbeKind {
    match port.app_protocol.as_deref() {
        Some("http" | "http2" | "h2c") => ProbeKind::Http,
        Some("grpc") if caps.grpc_probes => ProbeKind::Grpc,
        _ => ProbeKind::Tcp,
    }
}

pub fn build(spec: &MicroserviceSpec, caps: &Capabilities) -> Result<ContainerProbes, BuildError> {
    let settings = spec.probes.clone().unwrap_or_default();
    if settings.disabled {
        return Ok(ContainerProbes::default());
    }
    let primary = spec.ports.first();
    let probe = |which: Which,
                 explicit: &Option<api::Probe>,
                 defaulted: bool|
     -> Result<Option<Probe>, BuildError> {
        match (explicit, primary) {
            (Some(explicit), _) => explicit_probe(spec, caps, which, explicit).map(Some),
            (None, Some(primary)) if defaulted => Ok(Some(probe_of_kind(
                default_kind(primary, caps),
                which,
                primary,
                None,
            ))),
            // No ports: nothing to probe by default.
            (None, _) => Ok(None),
        }
    };
    Ok(ContainerProbes {
        readiness: probe(Which::Readiness, &settings.readiness, true)?,
        liveness: probe(Which::Liveness, &settings.liveness, true)?,
        // A startup probe holds the others back; only when asked for.
        startup: probe(Which::Startup, &settings.startup, false)?,
    })
}

fn explicit_probe(
    spec: &MicroserviceSpec,
    caps: &Capabilities,
    which: Which,
    explicit: &api::Probe,
) -> Result<Probe, BuildError> {
    let port = match &explicit.port {
        Some(name) => find_port(spec, name, &format!("{}.port", which.field()))?,
        None => spec.ports.first().ok_or_else(|| BuildError::NoPorts {
            field: which.field().to_string(),
        })?,
    };
    let kind = if explicit.http.is_some() {
        ProbeKind::Http
    } else if explicit.grpc.is_some() {
        // Servers before 1.24 reject grpc probes; a TCP connect is the closest check.
        if caps.grpc_probes {
            ProbeKind::Grpc
        } else {
            ProbeKind::Tcp
        }
    } else if explicit.tcp.is_some() {
        ProbeKind::Tcp
    } else {
        default_kind(port, caps)
    };
    let mut probe = probe_of_kind(kind, which, port, Some(explicit));
    probe.initial_delay_seconds = explicit.initial_delay_seconds;
    probe.period_seconds = explicit.period_seconds;
    probe.timeout_seconds = explicit.timeout_seconds;
    probe.failure_threshold = explicit.failure_threshold;
    probe.success_threshold = explicit.success_threshold;
    Ok(probe)
}

fn probe_of_kind(
    kind: ProbeKind,
    which: Which,
    port: &Port,
    explicit: Option<&api::Probe>,
) -> Probe {
    let number = container_port(port);
    match kind {
        ProbeKind::Http => {
            let http = explicit.and_then(|p| p.http.as_ref());
            let headers: Vec<HTTPHeader> = http
                .map(|h| {
                    h.headers
                        .iter()
                        .map(|header| HTTPHeader {
                            name: header.name.clone(),
                            value: header.value.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            Probe {
                http_get: Some(HTTPGetAction {
                    path: Some(
                        http.and_then(|h| h.path.clone())
                            .unwrap_or_else(|| which.default_path().to_string()),
                    ),
                    port: IntOrString::Int(number),
                    http_headers: (!headers.is_empty()).then_some(headers),
                    ..HTTPGetAction::default()
                }),
                ..Probe::default()
            }
        }
        ProbeKind::Grpc => Probe {
            grpc: Some(GRPCAction {
                port: number,
                service: explicit
                    .and_then(|p| p.grpc.as_ref())
                    .and_then(|g| g.service.clone()),
            }),
            ..Probe::default()
        },
        ProbeKind::Tcp => Probe {
            tcp_socket: Some(TCPSocketAction {
                port: IntOrString::Int(number),
                ..TCPSocketAction::default()
            }),
            ..Probe::default()
        },
    }
}
