//! The `orders` service: see `flotilla_samples::orders`.

fn main() -> std::process::ExitCode {
    flotilla_samples::run("orders", flotilla_samples::orders::build)
}
