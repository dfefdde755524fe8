//! Throwaway namespaces: one per test, deleted at the end even when the test panics.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use kube::api::{Api, ObjectMeta, PostParams};

use crate::kubectl::kubectl;
use crate::wait::{Poll, wait_for};

/// Label on every namespace the suite creates, to find leftovers.
pub const LABEL: &str = "flotilla-e2e";

/// A uniquely named namespace labelled `flotilla-e2e=true`. Dropping it deletes the
/// namespace (without waiting); when the test is panicking it first prints the
/// namespace's objects and events. `FLOTILLA_E2E_KEEP=1` keeps failed tests' namespaces.
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `<prefix>-<unique suffix>` and waits until pods can be created in it
    /// (its default ServiceAccount exists).
    pub async fn new(client: &kube::Client, prefix: &str) -> anyhow::Result<Self> {
        let name = format!("{prefix}-{}", unique_suffix());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(BTreeMap::from([(LABEL.to_string(), "true".to_string())])),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .with_context(|| format!("creating namespace {name}"))?;
        // Owned from here on: a failure below still deletes it.
        let this = Self { name };
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &this.name);
        wait_for(
            format!("ServiceAccount default in {}", this.name),
            Duration::from_secs(60),
            || {
                let sas = sas.clone();
                async move {
                    Ok(match sas.get_opt("default").await? {
                        Some(_) => Poll::Ready(()),
                        None => Poll::Pending("no default ServiceAccount yet".into()),
                    })
                }
            },
        )
        .await?;
        Ok(this)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Objects and events of the namespace, for failure output.
    pub fn describe(&self) -> String {
        let objects = kubectl(&["get", "all", "-o", "wide", "-n", &self.name])
            .unwrap_or_else(|e| format!("{e:#}"));
        let events = kubectl(&[
            "get",
            "events",
            "--sort-by=.lastTimestamp",
            "-n",
            &self.name,
        ])
        .unwrap_or_else(|e| format!("{e:#}"));
        format!("objects:\n{objects}\nevents:\n{events}")
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- namespace {} at failure ----\n{}",
                self.name,
                self.describe()
            );
            if std::env::var_os("FLOTILLA_E2E_KEEP").is_some() {
                eprintln!("FLOTILLA_E2E_KEEP set: keeping namespace {}", self.name);
                return;
            }
        }
        // Synchronous and non-waiting: Drop cannot await, and the test need not wait
        // for finalization.
        if let Err(e) = kubectl(&[
            "delete",
            "namespace",
            &self.name,
            "--wait=false",
            "--ignore-not-found",
        ]) {
            eprintln!("deleting namespace {}: {e:#}", self.name);
        }
    }
}

fn unique_suffix() -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    // splitmix64's finalizer spreads time, pid and counter over every digit.
    let mut n = (nanos as u64)
        ^ (u64::from(std::process::id()) << 32)
        ^ u64::from(COUNTER.fetch_add(1, Ordering::Relaxed)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    n = (n ^ (n >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    n = (n ^ (n >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    n ^= n >> 31;
    let mut s = String::new();
    for _ in 0..6 {
        s.push(char::from_digit((n % 36) as u32, 36).expect("digit < 36"));
        n /= 36;
    }
    s
}

#[cfg(test)]
mod tests {
    #[test]
    fn suffixes_are_dns_labels_and_differ() {
        let a = super::unique_suffix();
        let b = super::unique_suffix();
        assert_eq!(a.len(), 6);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        );
        assert_ne!(a, b);
    }
}
