//! Waiting for conditions with a deadline.

use std::fmt::Display;
use std::future::Future;
use std::time::{Duration, Instant};

/// One observation of a condition.
pub enum Poll<T> {
    /// The condition holds; the wait returns this value.
    Ready(T),
    /// Not yet; the text describes what was observed, for the timeout message.
    Pending(String),
}

const INTERVAL: Duration = Duration::from_millis(250);

/// Polls `check` every 250 ms until it returns [`Poll::Ready`] or `deadline` passes.
///
/// Errors from `check` count as "not yet" (the API or a Service may be briefly
/// unavailable) and are kept as the last observed state. On timeout the error names
/// `description` and the last observation.
pub async fn wait_for<T, F, Fut>(
    description: impl Display,
    deadline: Duration,
    mut check: F,
) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<Poll<T>>>,
{
    let start = Instant::now();
    let mut attempts = 0u32;
    loop {
        attempts += 1;
        let last = match check().await {
            Ok(Poll::Ready(v)) => return Ok(v),
            Ok(Poll::Pending(state)) => state,
            Err(e) => format!("error: {e:#}"),
        };
        if start.elapsed() >= deadline {
            anyhow::bail!(
                "timed out after {deadline:?} ({attempts} checks) waiting for {description}; last observed: {last}"
            );
        }
        tokio::time::sleep(INTERVAL.min(deadline.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn returns_the_ready_value() {
        let mut n = 0;
        let v = wait_for("n to reach 2", Duration::from_secs(5), || {
            n += 1;
            let n = n;
            async move {
                Ok(if n >= 2 {
                    Poll::Ready(n)
                } else {
                    Poll::Pending(format!("n = {n}"))
                })
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 2);
    }

    #[tokio::test]
    async fn timeout_reports_description_and_last_state() {
        let err = wait_for("never", Duration::from_millis(300), || async {
            Ok(Poll::<()>::Pending("still nothing".into()))
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(err.contains("waiting for never"), "{err}");
        assert!(err.contains("last observed: still nothing"), "{err}");
    }
}
