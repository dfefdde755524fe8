//! The `payments` service: see `flotilla_samples::payments`.

fn main() -> std::process::ExitCode {
    flotilla_samples::run("payments", flotilla_samples::payments::build)
}
