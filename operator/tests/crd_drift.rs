//! The committed CRDs under `crds/` are generated: they must match what the code makes.
//! On a mismatch, run `make crds` and commit the result. The chart installs its own copies
//! (`charts/flotilla/files/crds`), which must be the committed files.

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

fn yaml_files(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    names.sort();
    names
}

#[test]
fn chart_copies_match_the_committed_crds() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let committed_dir = format!("{root}/crds");
    let chart_dir = format!("{root}/charts/flotilla/files/crds");
    let names = yaml_files(&committed_dir);
    assert_eq!(
        yaml_files(&chart_dir),
        names,
        "charts/flotilla/files/crds must hold the files of crds/, no others: run `make chart-crds` \
         and remove any left over"
    );
    let read =
        |path: String| std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    for name in &names {
        assert!(
            read(format!("{chart_dir}/{name}")) == read(format!("{committed_dir}/{name}")),
            "charts/flotilla/files/crds/{name} differs from crds/{name}: run `make chart-crds`"
        );
    }
}
