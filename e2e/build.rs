//! `CLUSTER=kind` (as `make e2e` and `make chaos` pass it) sets the cfg `kind_cluster`, so
//! the scenarios that need the embedded cluster's control plane or audit log are
//! `#[ignore]`d there with their reason: the test runner reports them as ignored, not as
//! passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(kind_cluster)");
    println!("cargo::rerun-if-env-changed=CLUSTER");
    if std::env::var("CLUSTER").as_deref() == Ok("kind") {
        println!("cargo::rustc-cfg=kind_cluster");
    }
}
