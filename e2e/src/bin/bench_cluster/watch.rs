//! What the bench's own watches of the namespace saw, and when: children, current
//! statuses and edits, timed on this machine's clock.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flotilla::api::Microservice;
use flotilla::api::labels::MANAGED_SELECTOR;
use flotilla_e2e::{Poll, wait_for};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use tokio::task::JoinHandle;

use crate::{CHILD_KINDS, EDIT_VAR};

/// Background tasks, aborted when dropped.
pub struct Tasks(Vec<JoinHandle<()>>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

#[derive(Default)]
pub struct Observed {
    /// Watches that finished their initial list.
    pub synced: usize,
    /// When each child was first seen, by (kind, name).
    pub children: HashMap<(&'static str, String), Instant>,
    /// Per Microservice, since when its status has been current (None: not current).
    pub current_since: HashMap<String, Option<Instant>>,
    /// Per Deployment, each value of EDIT it carried, with when it was first seen.
    pub edits: HashMap<String, Vec<(u64, Instant)>>,
    /// Per Microservice, each value of EDIT in its spec, with when the watch saw it: when
    /// a watcher, the operator's as the bench's, could first hear of an edit.
    pub spec_edits: HashMap<String, Vec<(u64, Instant)>>,
    /// When each Microservice was first seen (the audit log's clock: this machine's).
    pub created: HashMap<String, Timestamp>,
}

pub type Shared = Arc<Mutex<Observed>>;

/// Status written for the current generation: observedGeneration and the Ready
/// condition's both current.
fn status_current(ms: &Microservice) -> bool {
    let generation = ms.metadata.generation;
    ms.status.as_ref().is_some_and(|s| {
        s.observed_generation == generation
            && s.condition("Ready")
                .is_some_and(|c| c.observed_generation == generation)
    })
}

/// The value of EDIT in a Deployment's first container.
fn edit_value(object: &DynamicObject) -> Option<u64> {
    object.data["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == EDIT_VAR)?["value"]
        .as_str()?
        .parse()
        .ok()
}

pub fn spawn_watches(
    client: &kube::Client,
    namespace: &str,
    kinds: &[(&'static str, ApiResource)],
    observed: &Shared,
) -> Tasks {
    let mut tasks = Vec::new();
    let microservices = Api::<Microservice>::namespaced(client.clone(), namespace);
    let seen = observed.clone();
    tasks.push(tokio::spawn(async move {
        let mut events = watcher(microservices, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(event) = events.next().await {
            let now = Instant::now();
            let mut seen = seen.lock().expect("observed lock");
            match event {
                Ok(watcher::Event::Apply(ms) | watcher::Event::InitApply(ms)) => {
                    seen.created
                        .entry(ms.name_any())
                        .or_insert_with(Timestamp::now);
                    if let Some(value) = ms
                        .spec
                        .env
                        .iter()
                        .find(|e| e.name == EDIT_VAR)
                        .and_then(|e| e.value.as_deref()?.parse().ok())
                    {
                        let history = seen.spec_edits.entry(ms.name_any()).or_default();
                        if history.last().map(|(v, _)| *v) != Some(value) {
                            history.push((value, now));
                        }
                    }
                    let current = status_current(&ms);
                    let since = seen.current_since.entry(ms.name_any()).or_default();
                    match (current, *since) {
                        (true, None) => *since = Some(now),
                        (false, _) => *since = None,
                        (true, Some(_)) => {}
                    }
                }
                Ok(watcher::Event::Delete(ms)) => {
                    seen.current_since.remove(&ms.name_any());
                }
                Ok(watcher::Event::InitDone) => seen.synced += 1,
                Ok(watcher::Event::Init) | Err(_) => {}
            }
        }
    }));
    for (kind, resource) in kinds {
        let kind: &'static str = kind;
        let api = Api::<DynamicObject>::namespaced_with(client.clone(), namespace, resource);
        let seen = observed.clone();
        tasks.push(tokio::spawn(async move {
            let config = watcher::Config::default().labels(MANAGED_SELECTOR);
            let mut events = watcher(api, config).default_backoff().boxed();
            while let Some(event) = events.next().await {
                let now = Instant::now();
                let mut seen = seen.lock().expect("observed lock");
                match event {
                    Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                        let name = object.name_any();
                        if kind == "Deployment"
                            && let Some(value) = edit_value(&object)
                        {
                            let history = seen.edits.entry(name.clone()).or_default();
                            if history.last().map(|(v, _)| *v) != Some(value) {
                                history.push((value, now));
                            }
                        }
                        seen.children.entry((kind, name)).or_insert(now);
                    }
                    Ok(watcher::Event::InitDone) => seen.synced += 1,
                    Ok(_) | Err(_) => {}
                }
            }
        }));
    }
    Tasks(tasks)
}

/// Waits until every child of `names` exists; returns when the last one appeared.
pub async fn wait_children(
    observed: &Shared,
    names: &[String],
    deadline: Duration,
) -> anyhow::Result<Instant> {
    wait_for(
        format!("the children of {} Microservices", names.len()),
        deadline,
        || {
            let seen = observed.lock().expect("observed lock");
            let mut missing = BTreeMap::<&str, usize>::new();
            let mut last = None::<Instant>;
            for (_, kind) in CHILD_KINDS {
                for name in names {
                    match seen.children.get(&(kind, name.clone())) {
                        Some(at) => last = last.max(Some(*at)),
                        None => *missing.entry(kind).or_default() += 1,
                    }
                }
            }
            let poll = match last {
                Some(last) if missing.is_empty() => Poll::Ready(last),
                _ => Poll::Pending(format!("missing: {missing:?}")),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}

/// Waits until every status of `names` is current at once; returns since when.
pub async fn wait_current(
    observed: &Shared,
    names: &[String],
    deadline: Duration,
) -> anyhow::Result<Instant> {
    wait_for(
        format!(
            "the statuses of {} Microservices to be current",
            names.len()
        ),
        deadline,
        || {
            let seen = observed.lock().expect("observed lock");
            let mut not_current = Vec::new();
            let mut last = None::<Instant>;
            for name in names {
                match seen.current_since.get(name).copied().flatten() {
                    Some(at) => last = last.max(Some(at)),
                    None => not_current.push(name.as_str()),
                }
            }
            let poll = match last {
                Some(last) if not_current.is_empty() => Poll::Ready(last),
                _ => Poll::Pending(format!(
                    "{} not current, e.g. {:?}",
                    not_current.len(),
                    &not_current[..not_current.len().min(5)]
                )),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}

/// Waits until `name`'s Deployment carries EDIT >= `value`; returns when it first did.
pub async fn wait_edit(observed: &Shared, name: &str, value: u64) -> anyhow::Result<Instant> {
    wait_for(
        format!("Deployment {name} to carry {EDIT_VAR}={value}"),
        Duration::from_secs(60),
        || {
            let seen = observed.lock().expect("observed lock");
            let history = seen.edits.get(name);
            let poll = match history.and_then(|h| h.iter().find(|(v, _)| *v >= value)) {
                Some((_, at)) => Poll::Ready(*at),
                None => Poll::Pending(format!(
                    "{EDIT_VAR} values seen: {:?}",
                    history.map(|h| h.iter().map(|(v, _)| *v).collect::<Vec<_>>())
                )),
            };
            std::future::ready(Ok(poll))
        },
    )
    .await
}
