//! The binary as the kubectl plugin and its shell completions, offline.

use std::process::Command;

fn run(bin: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(bin)
        .args(args)
        .output()
        .expect("flotilla runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn called_kubectl_flotilla_it_names_itself_as_kubectl_runs_it() {
    let dir = std::env::temp_dir().join(format!("flotilla-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("kubectl-flotilla");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_flotilla"), &link).unwrap();
    let (ok, help, _) = run(&link, &["--help"]);
    assert!(ok);
    assert!(help.contains("Usage: kubectl flotilla <COMMAND>"), "{help}");
    let (ok, _, error) = run(&link, &["status"]);
    assert!(!ok);
    assert!(error.contains("Usage: kubectl flotilla status"), "{error}");
    // The same flags as kubectl's for the cluster and the namespace.
    let (_, status_help, _) = run(&link, &["status", "--help"]);
    for flag in [
        "--kubeconfig <FILE>",
        "--context <NAME>",
        "-n, --namespace",
        "-o, --output",
    ] {
        assert!(status_help.contains(flag), "{flag}: {status_help}");
    }
    let (_, plain, _) = run(
        std::path::Path::new(env!("CARGO_BIN_EXE_flotilla")),
        &["--help"],
    );
    assert!(plain.contains("Usage: flotilla <COMMAND>"), "{plain}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn completions_cover_every_command() {
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flotilla"));
    for (shell, marker) in [
        ("bash", "complete -F _flotilla"),
        ("zsh", "#compdef flotilla"),
        ("fish", "complete -c flotilla"),
    ] {
        let (ok, script, error) = run(bin, &["completion", shell]);
        assert!(ok, "{shell}: {error}");
        assert!(script.contains(marker), "{shell}: {script}");
        for command in ["status", "diff", "graph", "render", "completion"] {
            assert!(script.contains(command), "{shell} completes {command}");
        }
    }
    let (ok, _, _) = run(bin, &["completion", "tcsh"]);
    assert!(!ok, "an unknown shell is refused");
}

#[test]
fn kubectl_completes_the_plugin_through_its_completer() {
    let dir = std::env::temp_dir().join(format!("flotilla-complete-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let completer = dir.join("kubectl_complete-flotilla");
    let plugin = dir.join("kubectl-flotilla");
    for link in [&completer, &plugin] {
        let _ = std::fs::remove_file(link);
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_flotilla"), link).unwrap();
    }
    // What kubectl runs for `kubectl flotilla rollout pro<TAB>`: Cobra's answer format.
    let (ok, answer, error) = run(&completer, &["rollout", "pro"]);
    assert!(ok, "{error}");
    assert_eq!(answer, "promote\n:4\n");
    let (_, flags, _) = run(&completer, &["status", "users", "--kube"]);
    assert_eq!(flags, "--kubeconfig\n:4\n");
    // A script cannot complete `kubectl flotilla`: a clear refusal, not a panic.
    let (ok, script, error) = run(&plugin, &["completion", "bash"]);
    assert!(!ok && script.is_empty());
    assert!(error.contains("kubectl_complete-flotilla"), "{error}");
    assert!(!error.contains("panicked"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn render_writes_a_service_monitor_only_for_a_prometheus_operator_cluster() {
    let dir = std::env::temp_dir().join(format!("flotilla-render-sm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("ms.yaml");
    std::fs::write(
        &file,
        "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {name: users}\nspec:\n  image: users:1\n  ports: [{name: http, port: 80}]\n  metrics: {interval: 30s}\n",
    )
    .unwrap();
    let bin = std::path::Path::new(env!("CARGO_BIN_EXE_flotilla"));
    let path = file.to_string_lossy();
    let (ok, with, error) = run(bin, &["render", "-f", &path, "--prometheus-operator"]);
    assert!(ok, "{error}");
    assert!(with.contains("kind: ServiceMonitor"), "{with}");
    let (ok, without, _) = run(bin, &["render", "-f", &path]);
    assert!(ok);
    assert!(!without.contains("ServiceMonitor"), "{without}");
    std::fs::remove_dir_all(&dir).unwrap();
}
