//! The `users` service: see `flotilla_samples::users`.

fn main() -> std::process::ExitCode {
    flotilla_samples::run("users", flotilla_samples::users::build)
}
