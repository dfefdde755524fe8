//! The committed CRDs under `crds/` are generated: they must match what the code makes.
//! On a mismatch, run `make crds` and commit the result.

use flotilla::api::{KubeVersion, crd_file_name, crds_yaml};

fn committed(file: &str) -> String {
    let path = format!("{}/../crds/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn crds_match_the_code() {
    assert!(
        committed("microservices.yaml") == crds_yaml(KubeVersion::NEWEST),
        "crds/microservices.yaml is out of date: run `make crds`"
    );
}

#[test]
fn crds_without_cel_match_the_code() {
    let legacy = committed("microservices-pre-1.25.yaml");
    assert!(
        legacy == crds_yaml(KubeVersion::new(1, 24)),
        "crds/microservices-pre-1.25.yaml is out of date: run `make crds`"
    );
    assert!(!legacy.contains("x-kubernetes-validations"));
}

/// Scripts apply `flotilla crd --kube-version V` and the e2e suite applies the committed
/// file `crd_file_name(V)`: the two must be the same for every version served by CRD v1.
#[test]
fn each_version_gets_its_committed_file() {
    for minor in 16..=KubeVersion::NEWEST.minor {
        let version = KubeVersion::new(1, minor);
        let file = crd_file_name(version);
        assert!(
            committed(file) == crds_yaml(version),
            "crds/{file} differs from the CRDs for {version}: crd_file_name disagrees with \
             crds_yaml, or the file is out of date (run `make crds`)"
        );
    }
}
