//! Watches of Flotilla's own kinds, decoded object by object: one that fails to
//! deserialize is skipped (and reported), never allowed to stop the watch.

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

use crate::api::bounds::{SPEC_BYTES_ANNOTATION, spec_over_budget};

/// Watches objects of a Flotilla kind (Microservices, MicroserviceClasses) untyped and
/// decodes each one on its own.
pub fn decoded<K>(
    api: Api<DynamicObject>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource + DeserializeOwned + StandIn + Send + 'static,
{
    watcher::watcher(api, config).filter_map(|event| async move {
        match event {
            Ok(event) => decode_event(event).map(Ok),
            Err(error) => Some(Err(error)),
        }
    })
}

/// The event with its object decoded, or None when the object does not decode.
pub fn decode_event<K: Resource + DeserializeOwned + StandIn>(
    event: Event<DynamicObject>,
) -> Option<Event<K>> {
    Some(match event {
        Event::Apply(object) => Event::Apply(decode(object)?),
        Event::InitApply(object) => Event::InitApply(decode(object)?),
        Event::Delete(object) => Event::Delete(decode(object)?),
        Event::Init => Event::Init,
        Event::InitDone => Event::InitDone,
    })
}

/// A kind whose spec may be too large to cache: what stands in for it then.
pub trait StandIn {
    /// A spec that decodes, cached in place of one over the budget.
    fn stand_in_spec() -> serde_json::Value;
}

impl StandIn for crate::api::Microservice {
    fn stand_in_spec() -> serde_json::Value {
        serde_json::json!({"image": ""})
    }
}

impl StandIn for crate::api::MicroserviceClass {
    fn stand_in_spec() -> serde_json::Value {
        serde_json::json!({})
    }
}

/// Decodes one object, logging the path of the field at fault when it fails. A spec over
/// [`crate::api::bounds::SPEC_BUDGET_BYTES`] is replaced by the kind's stand-in, marked with its size, so that
/// one tenant's object cannot make every replica hold megabytes.
pub fn decode<K: Resource + DeserializeOwned + StandIn>(object: DynamicObject) -> Option<K> {
    let kind = object
        .types
        .as_ref()
        .map_or_else(|| "object".to_string(), |t| t.kind.clone());
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let mut value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(error) => {
            warn!(%kind, %namespace, %name, %error, "skipping an object that does not serialize");
            return None;
        }
    };
    drop(object);
    if let Some(bytes) = value.get("spec").and_then(spec_over_budget) {
        warn!(%kind, %namespace, %name, bytes, "caching a stand-in for a spec over the budget");
        value["spec"] = K::stand_in_spec();
        let annotations = value["metadata"].as_object_mut().map(|meta| {
            meta.entry("annotations")
                .or_insert_with(|| serde_json::json!({}))
        });
        if let Some(serde_json::Value::Object(annotations)) = annotations {
            annotations.insert(SPEC_BYTES_ANNOTATION.to_string(), bytes.to_string().into());
        }
    }
    match serde_path_to_error::deserialize::<_, K>(value) {
        Ok(object) => Some(object),
        Err(error) => {
            warn!(%kind, %namespace, %name, field = %error.path(), error = %error.inner(),
                "skipping an object that does not decode; the others are still served");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Microservice;
    use serde_json::json;

    #[test]
    fn undecodable_objects_are_skipped() {
        let bad: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "broken", "namespace": "shop"},
            "spec": {"image": "x:1", "replicas": "three"}
        }))
        .unwrap();
        assert!(decode_event::<Microservice>(Event::Apply(bad)).is_none());
        assert!(matches!(
            decode_event::<Microservice>(Event::InitDone),
            Some(Event::InitDone)
        ));
    }

    #[test]
    fn a_spec_over_the_budget_is_cached_as_a_stand_in() {
        let huge: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "huge", "namespace": "shop"},
            "spec": {"image": "x:1", "args": ["a".repeat(300 * 1024)]}
        }))
        .unwrap();
        let Some(Event::Apply(ms)) = decode_event::<Microservice>(Event::Apply(huge)) else {
            panic!("a spec over the budget must still be cached")
        };
        assert_eq!(ms.spec.args, None);
        let refused = crate::validate::validate(&ms).unwrap_err().to_string();
        assert!(refused.contains("307227 bytes"), "{refused}");
        let small: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "flotilla.dev/v1alpha1", "kind": "Microservice",
            "metadata": {"name": "small", "namespace": "shop"},
            "spec": {"image": "x:1"}
        }))
        .unwrap();
        let Some(Event::Apply(ms)) = decode_event::<Microservice>(Event::Apply(small)) else {
            panic!("decodes")
        };
        assert!(ms.annotations().is_empty());
    }
}
