//! The operator under test as a child process of the test.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

/// A running `flotilla` process: `$FLOTILLA_BIN` (default `target/debug/flotilla`) with
/// the given arguments, logging to `target/e2e-logs/<name>.log`, authenticated as the
/// chart's ServiceAccount with the RBAC the chart gives it for those arguments
/// ([`crate::identity`]), never as the test's admin. Killed on drop; when the test is
/// panicking the log's tail is printed first.
pub struct Operator {
    name: String,
    args: Vec<String>,
    /// Environment variables set for the process on top of the test's.
    env: Vec<(String, String)>,
    log_path: PathBuf,
    child: Option<Child>,
}

const TAIL_LINES: usize = 60;

impl Operator {
    /// Starts `$FLOTILLA_BIN <args>` for one namespace, e.g. `["run", "--namespace",
    /// "ns", "--health-addr", "127.0.0.1:0"]`, as the chart installs it there.
    pub fn start(name: &str, args: &[&str]) -> anyhow::Result<Self> {
        Self::start_with_env(name, args, &[])
    }

    /// [`Operator::start`] with environment variables, e.g. a `POD_NAME` (its leader
    /// election identity). A `KUBECONFIG` among them is the scenario's own identity
    /// (recorded as such) instead of the chart's.
    pub fn start_with_env(name: &str, args: &[&str], env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::launch(name, args, env, None, crate::identity::RELEASE, &[])
    }

    /// [`Operator::start`] installed with chart values no flag carries (the RBAC of
    /// `backingServiceKinds`), each as `--set` takes it.
    pub fn start_with_chart_values(
        name: &str,
        args: &[&str],
        chart_values: &[&str],
    ) -> anyhow::Result<Self> {
        let values: Vec<String> = chart_values.iter().map(|v| v.to_string()).collect();
        Self::launch(name, args, &[], None, crate::identity::RELEASE, &values)
    }

    /// [`Operator::start_with_env`] as the chart's release `release` (its own
    /// ServiceAccount `release`), for scenarios that tell two operators apart by RBAC.
    pub fn start_as_release(
        name: &str,
        release: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::launch(name, args, env, None, release, &[])
    }

    /// A cluster-wide operator (no `--namespace`: the chart's `rbac.scope=cluster`), its
    /// ServiceAccount in `release_namespace`.
    pub fn start_cluster_wide(
        name: &str,
        release_namespace: &str,
        args: &[&str],
    ) -> anyhow::Result<Self> {
        Self::launch(
            name,
            args,
            &[],
            Some(release_namespace),
            crate::identity::RELEASE,
            &[],
        )
    }

    /// [`Operator::start_cluster_wide`] with `env` on top (a replica's `POD_NAME`).
    pub fn start_cluster_wide_with_env(
        name: &str,
        release_namespace: &str,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        Self::launch(
            name,
            args,
            env,
            Some(release_namespace),
            crate::identity::RELEASE,
            &[],
        )
    }

    fn launch(
        name: &str,
        args: &[&str],
        env: &[(&str, &str)],
        release_namespace: Option<&str>,
        release: &str,
        chart_values: &[String],
    ) -> anyhow::Result<Self> {
        let dir = logs_dir();
        fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let who = match env.iter().find(|(k, _)| k == "KUBECONFIG") {
            Some((_, own)) => {
                let who = format!("the scenario's own kubeconfig {own}");
                crate::identity::record(name, &who, &dir);
                who
            }
            None => {
                let identity = crate::identity::chart_identity(
                    name,
                    release,
                    &args,
                    chart_values,
                    release_namespace,
                    &dir,
                )?;
                env.push((
                    "KUBECONFIG".into(),
                    identity.kubeconfig.to_string_lossy().into_owned(),
                ));
                identity.describe()
            }
        };
        let mut op = Self {
            name: name.to_string(),
            args,
            env,
            log_path: dir.join(format!("{name}.log")),
            child: None,
        };
        let mut log = File::create(&op.log_path)
            .with_context(|| format!("creating {}", op.log_path.display()))?;
        writeln!(log, "=== identity: {who}")?;
        eprintln!("operator {name}: identity {who}");
        op.spawn()?;
        Ok(op)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let bin = binary();
        let mut log = OpenOptions::new().append(true).open(&self.log_path)?;
        writeln!(
            log,
            "=== starting {} {}",
            bin.display(),
            self.args.join(" ")
        )?;
        let child = Command::new(&bin)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {} (set FLOTILLA_BIN?)", bin.display()))?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL, the way a node loss or OOM kill ends the operator: no cleanup runs.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill().context("killing the operator")?;
            child.wait().context("reaping the operator")?;
            let mut log = OpenOptions::new().append(true).open(&self.log_path)?;
            writeln!(log, "=== killed with SIGKILL")?;
        }
        Ok(())
    }

    /// Sends a signal (`TERM`, `STOP`, `CONT`…) with kill(1).
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("the operator is not running")?;
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} {pid} failed");
        let mut log = OpenOptions::new().append(true).open(&self.log_path)?;
        writeln!(log, "=== sent SIG{signal}")?;
        Ok(())
    }

    /// The address its log says `/metrics` is served on.
    pub fn metrics_addr(&self) -> Option<String> {
        self.logged_addr("metrics")
    }

    /// The address its log gives as `KEY=ADDR` (`health`, `metrics`), the latest one.
    pub fn logged_addr(&self, key: &str) -> Option<String> {
        let prefix = format!("{key}=");
        self.log().lines().rev().find_map(|line| {
            let (_, rest) = line.split_once(&prefix)?;
            Some(rest.split_whitespace().next()?.to_string())
        })
    }

    /// Kills the process if it runs and starts it again with the same arguments.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9()?;
        self.spawn()
    }

    /// Whether the process is still running (false once it has exited on its own).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The whole log so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- operator {} log tail ({}) ----\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(TAIL_LINES)
            );
        }
        let _ = self.kill9();
    }
}

/// The workspace's target directory: `$CARGO_TARGET_DIR`, else `<workspace>/target`.
pub(crate) fn workspace_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// The `flotilla` binary under test: `$FLOTILLA_BIN`, else the workspace's debug build.
pub fn binary() -> PathBuf {
    std::env::var_os("FLOTILLA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_target().join("debug/flotilla"))
}

fn logs_dir() -> PathBuf {
    workspace_target().join("e2e-logs")
}
