//! Restricted Pod Security by default: non-root, no privilege escalation, no
//! capabilities, RuntimeDefault seccomp, read-only root filesystem with writable emptyDirs.
//!
//! `security.profile: baseline` (allowed only by a class's policy) is for images that
//! cannot run that way: the image's user and the runtime's default capabilities, a
//! writable root filesystem unless asked otherwise. RuntimeDefault seccomp stays: the
//! baseline standard allows it and it costs such images nothing.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    Capabilities as LinuxCapabilities, EmptyDirVolumeSource, PodSecurityContext, SeccompProfile,
    SecurityContext, Volume, VolumeMount,
};
use sha2::{Digest, Sha256};

use super::BuildError;
use crate::api::{MicroserviceSpec, SecurityProfile};

/// The default non-root user and group: the `nonroot` user of distroless images, so
/// images without a USER still start under `runAsNonRoot`.
pub const DEFAULT_ID: i64 = 65532;

/// Where the always-present writable emptyDir is mounted.
pub const TMP_PATH: &str = "/tmp";

/// The Pod Security profile in effect: `restricted` unless the spec says `baseline`.
pub fn profile(spec: &MicroserviceSpec) -> SecurityProfile {
    spec.security
        .as_ref()
        .and_then(|s| s.profile)
        .unwrap_or_default()
}

pub fn pod_security_context(spec: &MicroserviceSpec) -> PodSecurityContext {
    let security = spec.security.clone().unwrap_or_default();
    if profile(spec) == SecurityProfile::Baseline {
        // Only the IDs the spec gives: the image's USER (root included) otherwise.
        return PodSecurityContext {
            run_as_user: security.run_as_user,
            run_as_group: security.run_as_group,
            // The emptyDirs must be writable by the process's group, when one is set.
            fs_group: security.run_as_group,
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        };
    }
    let group = security.run_as_group.unwrap_or(DEFAULT_ID);
    PodSecurityContext {
        run_as_non_root: Some(true),
        run_as_user: Some(security.run_as_user.unwrap_or(DEFAULT_ID)),
        run_as_group: Some(group),
        // The emptyDirs must be writable by the process's group.
        fs_group: Some(group),
        seccomp_profile: Some(runtime_default()),
        ..PodSecurityContext::default()
    }
}

pub fn container_security_context(spec: &MicroserviceSpec) -> SecurityContext {
    let given = spec
        .security
        .as_ref()
        .and_then(|s| s.read_only_root_filesystem);
    if profile(spec) == SecurityProfile::Baseline {
        // Privilege escalation and capabilities left to the runtime's defaults, which
        // the baseline standard admits.
        return SecurityContext {
            read_only_root_filesystem: Some(given.unwrap_or(false)),
            ..SecurityContext::default()
        };
    }
    let read_only = given.unwrap_or(true);
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(LinuxCapabilities {
            drop: Some(vec!["ALL".to_string()]),
            add: None,
        }),
        read_only_root_filesystem: Some(read_only),
        run_as_non_root: Some(true),
        ..SecurityContext::default()
    }
}

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_string(),
        localhost_profile: None,
    }
}

/// One emptyDir at `/tmp` and one per distinct writable path, with their mounts, in
/// that order. `/tmp` given again, or a path given twice (`/data` and `/data/`), is
/// mounted once: duplicate mount paths are rejected by the API server.
pub fn writable_volumes(
    spec: &MicroserviceSpec,
) -> Result<(Vec<Volume>, Vec<VolumeMount>), BuildError> {
    let mut seen = BTreeSet::from([TMP_PATH.to_string()]);
    let mut volumes = vec![empty_dir("tmp")];
    let mut mounts = vec![mount("tmp", TMP_PATH)];
    let paths = spec.security.iter().flat_map(|s| s.writable_paths.iter());
    for path in paths {
        let normalized = normalize(&path.0)?;
        if seen.insert(normalized.clone()) {
            let name = volume_name(&normalized);
            volumes.push(empty_dir(&name));
            mounts.push(mount(&name, &normalized));
        }
    }
    Ok((volumes, mounts))
}

fn normalize(path: &str) -> Result<String, BuildError> {
    let trimmed = path.trim_end_matches('/');
    if !trimmed.starts_with('/') || trimmed.len() < 2 || path.contains('\0') {
        return Err(BuildError::InvalidWritablePath {
            path: path.to_string(),
        });
    }
    Ok(trimmed.to_string())
}

/// A volume name for a path: `w-` + a readable slug of the path + 8 hex digits of its
/// SHA-256, so distinct paths that slug alike (`/a_b`, `/a-b`) never collide and the
/// name stays a DNS label (at most 63 characters, lowercase alphanumerics and `-`).
pub fn volume_name(path: &str) -> String {
    let mut slug = String::new();
    for c in path.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
        if slug.len() >= 40 {
            break;
        }
    }
    let slug = slug.trim_end_matches('-');
    let digest = Sha256::digest(path.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    if slug.is_empty() {
        format!("w-{hash}")
    } else {
        format!("w-{slug}-{hash}")
    }
}

fn empty_dir(name: &str) -> Volume {
    Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    }
}

fn mount(name: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: name.to_string(),
        mount_path: path.to_string(),
        ..VolumeMount::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_dns_label(s: &str) -> bool {
        !s.is_empty()
            && s.len() <= 63
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.starts_with('-')
            && !s.ends_with('-')
    }

    #[test]
    fn volume_names_are_dns_labels_and_distinct() {
        let paths = [
            "/var/cache/nginx",
            "/a_b",
            "/a-b",
            "/ÜBER/ñ",
            &format!("/{}", "x".repeat(300)),
        ];
        let names: BTreeSet<String> = paths.iter().map(|p| volume_name(p)).collect();
        assert_eq!(names.len(), paths.len());
        for name in &names {
            assert!(is_dns_label(name), "{name}");
        }
        assert_eq!(
            volume_name("/var/cache/nginx"),
            volume_name("/var/cache/nginx")
        );
        assert!(volume_name("/var/cache/nginx").starts_with("w-var-cache-nginx-"));
    }

    #[test]
    fn root_is_not_a_writable_path() {
        assert!(normalize("//").is_err());
        assert!(normalize("relative").is_err());
        assert_eq!(normalize("/data/").unwrap(), "/data");
    }
}
