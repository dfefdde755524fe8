//! The CRDs as YAML, adjusted to the Kubernetes version they are for.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps,
};
use kube::CustomResourceExt;
use serde_json::Value;

use super::{Microservice, MicroserviceClass, bounds};

/// A Kubernetes `major.minor` version, as `--kube-version` takes it (`1.20`, `v1.31.2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    /// The newest version Flotilla's defaults are written for.
    pub const NEWEST: KubeVersion = KubeVersion {
        major: 1,
        minor: 35,
    };

    pub const fn new(major: u32, minor: u32) -> Self {
        KubeVersion { major, minor }
    }

    /// CEL rules in CRDs (`x-kubernetes-validations`) are served from 1.25 on; older
    /// servers refuse a CRD that carries them.
    pub fn supports_cel(self) -> bool {
        self >= KubeVersion::new(1, 25)
    }

    /// gRPC probes are served from 1.24 on.
    pub fn supports_grpc_probes(self) -> bool {
        self >= KubeVersion::new(1, 24)
    }

    /// The `sleep` lifecycle action is served from 1.30 on.
    pub fn supports_sleep_action(self) -> bool {
        self >= KubeVersion::new(1, 30)
    }
}

impl std::str::FromStr for KubeVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim().trim_start_matches('v');
        let mut parts = trimmed.split('.');
        let number = |part: Option<&str>| {
            part.map(|p| p.trim_end_matches('+'))
                .and_then(|p| p.parse::<u32>().ok())
                .ok_or_else(|| format!("`{s}` is not a Kubernetes version such as 1.20 or v1.31.2"))
        };
        Ok(KubeVersion::new(
            number(parts.next())?,
            number(parts.next())?,
        ))
    }
}

impl std::fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Every CRD Flotilla serves, for the given server version.
pub fn crds(version: KubeVersion) -> Vec<CustomResourceDefinition> {
    vec![
        adjust(restrict_name(Microservice::crd()), version),
        adjust(MicroserviceClass::crd(), version),
    ]
}

/// What `metadata.name` of a Microservice must match: a DNS-1035 label, as
/// `crate::validate` demands too.
const MICROSERVICE_NAME_PATTERN: &str = "^[a-z]([-a-z0-9]*[a-z0-9])?$";
const MICROSERVICE_NAME_MAX_LENGTH: i64 = 63;

/// Every child takes the Microservice's name and its Service needs a DNS-1035 label,
/// so admission refuses any other name rather than letting some children apply and the
/// Service fail. Structural schemas may restrict `metadata.name` (and `generateName`),
/// nothing else of `metadata`; every served CRD version (1.16 on) accepts it.
fn restrict_name(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    let name = JSONSchemaProps {
        type_: Some("string".to_string()),
        max_length: Some(MICROSERVICE_NAME_MAX_LENGTH),
        pattern: Some(MICROSERVICE_NAME_PATTERN.to_string()),
        ..JSONSchemaProps::default()
    };
    let metadata = JSONSchemaProps {
        type_: Some("object".to_string()),
        properties: Some(BTreeMap::from([("name".to_string(), name)])),
        ..JSONSchemaProps::default()
    };
    for version in &mut crd.spec.versions {
        let schema = version
            .schema
            .as_mut()
            .and_then(|s| s.open_api_v3_schema.as_mut())
            .expect("a derived CRD has a schema");
        schema
            .properties
            .get_or_insert_default()
            .insert("metadata".to_string(), metadata.clone());
    }
    crd
}

fn adjust(crd: CustomResourceDefinition, version: KubeVersion) -> CustomResourceDefinition {
    let mut value = serde_json::to_value(&crd).expect("a CRD serializes");
    // Optional enums come out of schemars with `null` among their values; Flotilla never
    // writes null (unset fields are omitted), and older validators reject it in `enum`.
    strip_null_enum_values(&mut value);
    // Optional fields come out as `nullable`; servers before 1.27 then publish them with
    // no type, and `kubectl explain` cannot descend into them. Flotilla omits unset
    // fields instead of writing null, so nothing needs it.
    strip_key(&mut value, "nullable");
    if !version.supports_cel() {
        strip_key(&mut value, "x-kubernetes-validations");
    }
    if let Some(Value::Array(versions)) = value.pointer_mut("/spec/versions") {
        for served in versions {
            if let Some(schema) = served.pointer_mut("/schema/openAPIV3Schema") {
                bounds::apply(schema);
            }
        }
    }
    serde_json::from_value(value).expect("an adjusted CRD deserializes")
}

fn strip_null_enum_values(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(values)) = map.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            map.values_mut().for_each(strip_null_enum_values);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_null_enum_values),
        _ => {}
    }
}

/// The CRDs as one multi-document YAML stream, as committed under `crds/`.
pub fn crds_yaml(version: KubeVersion) -> String {
    crds(version)
        .iter()
        .map(|crd| crate::yaml::to_string(crd).expect("a CRD serializes to YAML"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The file under `crds/` holding [`crds_yaml`] for `version`: servers before 1.25 refuse
/// CRDs with CEL rules, so they get the copy without them.
pub fn crd_file_name(version: KubeVersion) -> &'static str {
    if version.supports_cel() {
        "microservices.yaml"
    } else {
        "microservices-pre-1.25.yaml"
    }
}

fn strip_key(value: &mut Value, key: &str) {
    match value {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|v| strip_key(v, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|v| strip_key(v, key)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(
            "1.20".parse::<KubeVersion>().unwrap(),
            KubeVersion::new(1, 20)
        );
        assert_eq!(
            "v1.31.2".parse::<KubeVersion>().unwrap(),
            KubeVersion::new(1, 31)
        );
        assert_eq!(
            "1.27+".parse::<KubeVersion>().unwrap(),
            KubeVersion::new(1, 27)
        );
        assert!("one".parse::<KubeVersion>().is_err());
    }

    #[test]
    fn old_servers_get_no_cel() {
        assert!(crds_yaml(KubeVersion::NEWEST).contains("x-kubernetes-validations"));
        assert!(!crds_yaml(KubeVersion::new(1, 20)).contains("x-kubernetes-validations"));
    }

    #[test]
    fn microservice_names_are_restricted_for_every_server() {
        for version in [
            KubeVersion::NEWEST,
            KubeVersion::new(1, 24),
            KubeVersion::new(1, 20),
        ] {
            let crd = &crds(version)[0];
            assert_eq!(crd.spec.names.kind, "Microservice");
            for served in &crd.spec.versions {
                let schema = served.schema.as_ref().unwrap().open_api_v3_schema.as_ref();
                let metadata = &schema.unwrap().properties.as_ref().unwrap()["metadata"];
                assert_eq!(metadata.type_.as_deref(), Some("object"));
                let name = &metadata.properties.as_ref().unwrap()["name"];
                assert_eq!(name.type_.as_deref(), Some("string"), "{version}");
                assert_eq!(name.max_length, Some(63), "{version}");
                assert_eq!(
                    name.pattern.as_deref(),
                    Some("^[a-z]([-a-z0-9]*[a-z0-9])?$"),
                    "{version}"
                );
            }
        }
    }

    #[test]
    fn enums_hold_no_null() {
        let mut found_null = false;
        for crd in crds(KubeVersion::NEWEST) {
            let value = serde_json::to_value(&crd).unwrap();
            visit_enums(&value, &mut |values| {
                found_null |= values.iter().any(Value::is_null)
            });
        }
        assert!(!found_null);
    }

    fn visit_enums(value: &Value, f: &mut impl FnMut(&[Value])) {
        match value {
            Value::Object(map) => {
                if let Some(Value::Array(values)) = map.get("enum") {
                    f(values);
                }
                map.values().for_each(|v| visit_enums(v, f));
            }
            Value::Array(items) => items.iter().for_each(|v| visit_enums(v, f)),
            _ => {}
        }
    }
}
