//! The `inventory` service: see `flotilla_samples::inventory`.

fn main() -> std::process::ExitCode {
    flotilla_samples::run("inventory", flotilla_samples::inventory::build)
}
