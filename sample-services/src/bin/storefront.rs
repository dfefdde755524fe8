//! The `storefront` service: see `flotilla_samples::storefront`.

fn main() -> std::process::ExitCode {
    flotilla_samples::run("storefront", flotilla_samples::storefront::build)
}
