//! Where orders keeps its orders: [`OrderStore`], PostgreSQL in the service
//! ([`super::postgres::PgStore`]), memory in unit tests ([`MemoryStore`]).

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::StatusCode;

use super::{Order, OrderLine};
use crate::ApiError;

/// An order to record: everything but the id and time, which the store assigns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total_cents: u64,
    /// `confirmed` or `declined`.
    pub status: &'static str,
    pub authorization_id: String,
    pub reason: Option<String>,
}

/// A store that failed a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// It cannot be reached now (down, restarting, the connection lost): worth retrying,
    /// answered 503.
    Unavailable(String),
    /// It answered with an error: answered 500.
    Failed(String),
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unavailable(why) => write!(f, "the order database is unavailable: {why}"),
            Self::Failed(why) => write!(f, "the order database failed: {why}"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        let status = match e {
            StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            StoreError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

/// The orders, shared by every replica when the store is a database. Ids are `o-<n>`,
/// unique across replicas and restarts.
pub trait OrderStore: Clone + Send + Sync + 'static {
    /// `Ok` when a request can be served now, without a round trip: checked before an
    /// order takes stock or money, so an unreachable store refuses it first.
    fn available(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// A round trip to the store, for `/readyz`.
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records `draft`; returns it with its id and time.
    fn insert(&self, draft: Draft) -> impl Future<Output = Result<Order, StoreError>> + Send;

    /// The latest `limit` orders, newest first.
    fn list(&self, limit: u32) -> impl Future<Output = Result<Vec<Order>, StoreError>> + Send;

    /// The order `id`, if there is one.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Order>, StoreError>> + Send;
}

/// Orders in this process's memory: for unit tests, which need no database.
#[derive(Clone, Default)]
pub struct MemoryStore {
    orders: Arc<Mutex<Vec<Order>>>,
    down: Arc<AtomicBool>,
}

impl MemoryStore {
    /// Makes the store answer as an unreachable database does (`true`), or not.
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }

    fn up(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("connection refused".into()))
        } else {
            Ok(())
        }
    }
}

impl OrderStore for MemoryStore {
    async fn available(&self) -> Result<(), StoreError> {
        self.up()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.up()
    }

    async fn insert(&self, draft: Draft) -> Result<Order, StoreError> {
        self.up()?;
        let mut orders = self.orders.lock().expect("orders lock");
        let order = Order {
            order_id: format!("o-{}", orders.len() + 1),
            user_id: draft.user_id,
            items: draft.items,
            total_cents: draft.total_cents,
            status: draft.status.to_string(),
            authorization_id: draft.authorization_id,
            reason: draft.reason,
            placed_at: rfc3339(SystemTime::now()),
        };
        orders.push(order.clone());
        Ok(order)
    }

    async fn list(&self, limit: u32) -> Result<Vec<Order>, StoreError> {
        self.up()?;
        let orders = self.orders.lock().expect("orders lock");
        Ok(orders.iter().rev().take(limit as usize).cloned().collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        self.up()?;
        let orders = self.orders.lock().expect("orders lock");
        Ok(orders.iter().find(|o| o.order_id == id).cloned())
    }
}

/// `t` as RFC 3339 in UTC with milliseconds: `2026-01-02T03:04:05.006Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil: the proleptic Gregorian date of a day count.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600,
        rest % 3_600 / 60,
        rest % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_formats_utc_with_milliseconds() {
        let at = |secs: u64, millis: u64| {
            rfc3339(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis))
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(at(951_825_600, 7), "2000-02-29T12:00:00.007Z");
        assert_eq!(at(1_700_000_000, 123), "2023-11-14T22:13:20.123Z");
        assert_eq!(at(4_102_444_799, 999), "2099-12-31T23:59:59.999Z");
    }

    #[tokio::test]
    async fn the_memory_store_numbers_lists_newest_first_and_goes_down() {
        let store = MemoryStore::default();
        let draft = Draft {
            user_id: "u-1".into(),
            items: vec![],
            total_cents: 100,
            status: "confirmed",
            authorization_id: "a-1".into(),
            reason: None,
        };
        assert_eq!(store.insert(draft.clone()).await.unwrap().order_id, "o-1");
        assert_eq!(store.insert(draft.clone()).await.unwrap().order_id, "o-2");
        let listed = store.list(10).await.unwrap();
        assert_eq!(
            listed
                .iter()
                .map(|o| o.order_id.as_str())
                .collect::<Vec<_>>(),
            ["o-2", "o-1"]
        );
        assert_eq!(store.list(1).await.unwrap().len(), 1);
        assert!(store.get("o-2").await.unwrap().is_some());
        assert!(store.get("o-9").await.unwrap().is_none());
        store.set_down(true);
        assert!(matches!(
            store.insert(draft).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(store.ping().await.is_err());
    }
}
