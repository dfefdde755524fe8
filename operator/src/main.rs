fn main() {
    print!("{}", flotilla::api::crds_yaml(flotilla::api::KubeVersion::NEWEST));
}
