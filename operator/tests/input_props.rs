//! Properties over what users and the API server hand the operator, where a panic would
//! take the shared operator down for every team: any text `flotilla render`/`diff` read
//! from a file, any rollout, gate and metrics settings (non-ASCII, huge and negative
//! numbers), and any release status read back from the API server (anyone with access to
//! the status subresource may write it). Nothing here may panic; errors are fine. YAML
//! built to hurt a parser (deep nesting, huge numbers, self-referencing anchors, alias
//! bombs) must also be refused or read in bounded time and memory (`flotilla::yaml`'s
//! budget).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use flotilla::api::{KubeVersion, Microservice};
use flotilla::builders::{self, BuildContext, Capabilities};
use flotilla::graph;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::Deployment;
use proptest::prelude::*;
use serde_json::{Value, json};

/// Text of every kind: plain and non-ASCII, digits, and the units the parsers look for.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        4 => "[a-z0-9/._-]{0,12}",
        2 => "[0-9]{1,25}[smhé]?",
        2 => "\\PC{0,12}",
        1 => Just("5é".to_string()),
        1 => Just("manual".to_string()),
        1 => Just("18446744073709551615h".to_string()),
    ]
    .boxed()
}

/// Integers across the range of the fields' type (i32), the edges most often. A value
/// beyond it makes the typed parse refuse the whole object; the text property covers it.
fn int() -> BoxedStrategy<i64> {
    prop_oneof![
        6 => -3i64..150,
        2 => Just(i64::from(i32::MAX)),
        2 => Just(i64::from(i32::MIN)),
        2 => any::<i32>().prop_map(i64::from),
    ]
    .boxed()
}

/// A JSON value of any shape, for a field the schema says is something else.
fn anything() -> BoxedStrategy<Value> {
    prop_oneof![
        text().prop_map(Value::from),
        int().prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
        Just(json!([])),
        Just(json!({})),
    ]
    .boxed()
}

fn step() -> impl Strategy<Value = Value> {
    (int(), text()).prop_map(|(weight, pause)| json!({"weight": weight, "pause": pause}))
}

fn rollout() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["canary", "canary", "rolling"]),
        prop::collection::vec(step(), 0..4),
        (text(), text(), int(), int()),
        (int(), int(), any::<bool>()),
    )
        .prop_map(
            |(strategy, steps, (path, port, status, percent), (restarts, deadline, auto))| {
                json!({
                    "strategy": strategy,
                    "steps": steps,
                    "gates": {
                        "maxRestarts": restarts,
                        "http": {"path": format!("/{path}"), "port": port, "expectedStatus": status, "successPercent": percent},
                    },
                    "progressDeadlineSeconds": deadline,
                    "autoRollback": auto,
                })
            },
        )
}

fn metrics() -> impl Strategy<Value = Value> {
    (text(), text(), text()).prop_map(
        |(port, path, interval)| json!({"port": port, "path": path, "interval": interval}),
    )
}

/// A Microservice with an http port, the rollout and metrics settings above, and
/// sometimes a field of the wrong shape.
fn microservice() -> impl Strategy<Value = Value> {
    (
        rollout(),
        metrics(),
        any::<bool>(),
        prop::option::weighted(0.2, ("[a-zA-Z]{1,12}", anything())),
    )
        .prop_map(|(rollout, metrics, with_metrics, odd)| {
            let mut spec = json!({
                "image": "registry.example.com/shop/users:1",
                "ports": [{"name": "http", "port": 80, "targetPort": 8080, "appProtocol": "http"}],
                "rollout": rollout,
            });
            if with_metrics {
                spec["metrics"] = metrics;
            }
            if let Some((field, value)) = odd {
                spec[field] = value;
            }
            json!({
                "apiVersion": "flotilla.dev/v1alpha1",
                "kind": "Microservice",
                "metadata": {"name": "users", "namespace": "shop", "generation": 3},
                "spec": spec,
            })
        })
}

fn time() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!("2026-12-07T10:00:00Z"),
        json!("1970-01-01T00:00:00Z"),
        json!("9999-12-31T23:59:59Z"),
        Value::Null,
    ])
}

/// A release status as it may be read back: any step, counts, phase and times.
fn status() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec![
            "Healthy",
            "Progressing",
            "Paused",
            "Failed",
            "RolledBack",
            "Promoting",
        ]),
        (int(), int(), int()),
        (int(), int()),
        (time(), time(), time()),
        (text(), any::<bool>()),
    )
        .prop_map(
            |(phase, (step, steps, weight), (passed, failed), (started, stepped, paused), (revision, promoted))| {
                json!({"rollout": {
                    "phase": phase, "revision": revision, "step": step, "steps": steps, "weight": weight,
                    "releaseStartedAt": started, "stepStartedAt": stepped, "pausedSince": paused,
                    "stableRevision": revision, "stableImage": "registry.example.com/shop/users:0",
                    "httpChecks": {"passed": passed, "failed": failed, "lastCheckAt": stepped},
                    "promoted": promoted,
                }})
            },
        )
}

/// A Deployment as the cache may show it, with any replica counts.
fn deployment() -> impl Strategy<Value = Option<Deployment>> {
    prop::option::of((int(), int(), int(), int())).prop_map(|counts| {
        counts.and_then(|(generation, replicas, updated, ready)| {
            serde_json::from_value(json!({
                "metadata": {"name": "users", "namespace": "shop", "generation": generation},
                "spec": {"replicas": replicas, "selector": {}, "template": {}},
                "status": {"observedGeneration": generation, "replicas": replicas,
                           "updatedReplicas": updated, "readyReplicas": ready, "availableReplicas": ready}
            }))
            .ok()
        })
    })
}

/// A "billion laughs": `depth` anchors, each a list of `width` aliases of the one before,
/// so the last one expands to `width^depth` scalars from a few hundred bytes.
fn laughs(width: usize, depth: usize) -> String {
    let mut text = format!("l0: &l0 [{}]\n", vec!["lol"; width].join(", "));
    for level in 1..depth {
        let previous = format!("*l{}", level - 1);
        text.push_str(&format!(
            "l{level}: &l{level} [{}]\n",
            vec![previous.as_str(); width].join(", ")
        ));
    }
    text
}

/// Text built to hurt a YAML parser, alone or after a valid Microservice.
fn hostile_yaml() -> impl Strategy<Value = String> {
    let text = prop_oneof![
        // Anything, non-ASCII and control characters included.
        "\\PC{0,256}",
        "[\\[\\]{}:,&*!|>'\"#%@` \n\t-]{0,128}",
        // Deep flow and block nesting, closed or not.
        (1usize..2_000, any::<bool>()).prop_map(|(n, closed)| {
            let close = if closed { "]".repeat(n) } else { String::new() };
            format!("{}{close}", "[".repeat(n))
        }),
        (1usize..300).prop_map(|n| (0..n).map(|i| format!("{}a:\n", "  ".repeat(i))).collect()),
        // Huge, tiny and odd numbers where the spec wants small integers.
        prop::sample::select(vec![
            "99999999999999999999999999999999999999",
            "-170141183460469231731687303715884105729",
            "1e400",
            "-1e-400",
            ".inf",
            ".nan",
            "0x7fffffffffffffffffffffff",
            "0o777777777777777777777777777",
            "1_000_000",
        ])
        .prop_map(|n| format!("apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: n}}\nspec:\n  image: x:1\n  replicas: {n}\n  ports: [{{name: http, port: {n}}}]\n")),
        // Anchors and aliases: self-reference, undefined, redefined, merge keys.
        prop::sample::select(vec![
            "a: &a [*a]",
            "&a [*a, *a]",
            "a: *nothing",
            "a: &a 1\nb: &a 2\nc: *a",
            "base: &b {x: 1}\nd: {<<: *b, <<: *b}",
            "a: &a {b: *a}",
        ])
        .prop_map(str::to_string),
        (1usize..12, 1usize..12).prop_map(|(width, depth)| laughs(width, depth)),
    ];
    (microservice(), text, any::<bool>()).prop_map(|(ms, text, after)| {
        if after {
            let ms = flotilla::yaml::to_string(&ms).expect("a JSON value prints as YAML");
            format!("{ms}---\n{text}")
        } else {
            text
        }
    })
}

static CLI_CASES: AtomicUsize = AtomicUsize::new(0);
static HOSTILE_CASES: AtomicUsize = AtomicUsize::new(0);
static RELEASE_CASES: AtomicUsize = AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// What `flotilla render -f` and `flotilla diff -f` parse and plan: any document text,
    /// well-formed or not.
    #[test]
    fn any_file_the_cli_reads_renders_or_fails_without_panicking(
        ms in microservice(),
        garbage in "\\PC{0,64}",
        newest in any::<bool>(),
    ) {
        let version = if newest { KubeVersion::NEWEST } else { KubeVersion::new(1, 20) };
        let yaml = flotilla::yaml::to_string(&ms).expect("a JSON value prints as YAML");
        let _ = flotilla::render::render(std::slice::from_ref(&yaml), version);
        let _ = flotilla::render::render(&[format!("{yaml}\n---\n{garbage}")], version);
        let _ = flotilla::render::render(&[garbage], version);
        let count = CLI_CASES.fetch_add(1, Ordering::Relaxed) + 1;
        if count.is_multiple_of(512) {
            eprintln!("{count} documents rendered (or refused) without a panic");
        }
    }

    /// The entry point of every command that reads files (`render`, `diff`, `graph`) on
    /// text built to hurt a YAML parser: no panic, an answer in bounded time, and what it
    /// reads is bounded by the budget (an alias bomb is refused, not expanded).
    #[test]
    fn hostile_yaml_is_read_or_refused_in_bounded_time(text in hostile_yaml()) {
        let started = Instant::now();
        let parsed = flotilla::render::parse_input(std::slice::from_ref(&text));
        let _ = flotilla::render::render(std::slice::from_ref(&text), KubeVersion::NEWEST);
        let elapsed = started.elapsed();
        // Milliseconds in a debug build; the margin is for a loaded machine.
        prop_assert!(elapsed < Duration::from_secs(5), "{elapsed:?} for {} bytes", text.len());
        if let Ok(input) = &parsed {
            let size = serde_json::to_string(&input.microservices).unwrap().len()
                + serde_json::to_string(&input.classes).unwrap().len();
            prop_assert!(size < 1 << 20, "{size} bytes read from {} bytes", text.len());
        }
        let count = HOSTILE_CASES.fetch_add(1, Ordering::Relaxed) + 1;
        if count.is_multiple_of(512) {
            eprintln!("{count} hostile YAML texts read or refused in bounded time without a panic");
        }
    }

    /// The release machine on any release status read back and any Deployment state.
    #[test]
    fn the_release_machine_takes_any_status_read_back(
        ms in microservice(),
        status in status(),
        stable in deployment(),
        canary in deployment(),
        now in prop::sample::select(vec![0i64, 1_800_000_000, 253_402_300_000]),
    ) {
        let Ok(mut ms) = serde_json::from_value::<Microservice>(ms) else {
            return Ok(());
        };
        ms.status = serde_json::from_value(status).ok();
        let ctx = BuildContext::new(
            Capabilities::newest(),
            graph::resolve(&ms, std::iter::once(&ms), &Default::default()),
            String::new(),
            Default::default(),
        );
        let Ok(mut children) = builders::build(&ms, &ctx) else {
            return Ok(());
        };
        let now = Timestamp::from_second(now).unwrap_or(Timestamp::UNIX_EPOCH);
        let _ = flotilla::rollout::http_checks_due(&ms, &ms, &children, &[], now);
        let _ = flotilla::rollout::metrics_due(&ms, &ms, &children, &[], now);
        // Whatever the status holds of an undo, and a request for any revision.
        let request = flotilla::rollout::undo::asked(Some("r1@t"), None).map(|asked| {
            flotilla::rollout::undo::Request {
                asked,
                found: Ok(serde_json::json!({"metadata": {"labels": {"flotilla.dev/revision": "r1"}}, "spec": {"containers": [{"name": "app", "image": "x"}]}})),
            }
        });
        let Some(undo) = flotilla::rollout::undo_pass(&ms, &mut children, request) else {
            return Ok(());
        };
        let _ = flotilla::rollout::reconcile(
            &ms,
            &ms,
            &mut children,
            stable.as_ref(),
            canary.as_ref(),
            &[],
            Default::default(),
            &[],
            undo,
            now,
        );
        let count = RELEASE_CASES.fetch_add(1, Ordering::Relaxed) + 1;
        if count.is_multiple_of(128) {
            eprintln!("{count} releases decided without a panic");
        }
    }
}

/// An alias bomb is refused by the budget (10,000 replayed alias events) before it is
/// expanded, quickly, with an error that names the input, the document and the place.
#[test]
fn alias_bombs_are_refused_not_expanded() {
    for (width, depth) in [(9, 9), (10, 10), (2, 30), (100, 3)] {
        let text = format!(
            "apiVersion: flotilla.dev/v1alpha1\nkind: Microservice\nmetadata: {{name: ok}}\nspec: {{image: x:1}}\n---\n{}",
            laughs(width, depth)
        );
        let started = Instant::now();
        let error = flotilla::render::parse_input(&[text])
            .unwrap_err()
            .to_string();
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(error.starts_with("input 1, document 2: "), "{error}");
        assert!(
            error.contains("alias replay limit exceeded") || error.contains("budget breached"),
            "{error}"
        );
        assert!(error.contains(" at line "), "{error}");
    }
    // Aliases in reason are read: a block reused a few times.
    let text = "x: &x {a: 1, b: [1, 2, 3]}\ny: [*x, *x, *x]\n";
    assert!(flotilla::render::parse_input(&[text.to_string()]).is_ok());
}
