//! Watches of Flotilla's own kinds, decoded object by object: one that fails to
//! deserialize is skipped (and reported), never allowed to stop the watch.

use futures::{Stream, StreamExt};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::warn;

/// Watches objects of a Flotilla kind (Microservices, MicroserviceClasses) untyped and
/// decodes each one on its own.
pub fn decoded<K>(
    api: Api<DynamicObject>,
    config: watcher::Config,
) -> impl Stream<Item = watcher::Result<Event<K>>> + Send + 'static
where
    K: Resource + DeserializeOwned + Send + 'static,
{
    watcher::watcher(api, config).filter_map(|event| async move {
        match event {
            Ok(event) => decode_event(event).map(Ok),
            Err(error) => Some(Err(error)),
        }
    })
}

/// The event with its object decoded, or None when the object does not decode.
pub fn decode_event<K: Resource + DeserializeOwned>(
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

/// Decodes one object, logging the path of the field at fault when it fails.
pub fn decode<K: Resource + DeserializeOwned>(object: DynamicObject) -> Option<K> {
    let kind = object
        .types
        .as_ref()
        .map_or_else(|| "object".to_string(), |t| t.kind.clone());
    let namespace = object.namespace().unwrap_or_default();
    let name = object.name_any();
    let value = match serde_json::to_value(&object) {
        Ok(value) => value,
        Err(error) => {
            warn!(%kind, %namespace, %name, %error, "skipping an object that does not serialize");
            return None;
        }
    };
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
}
