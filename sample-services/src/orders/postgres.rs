//! The orders in PostgreSQL: the connection settings from the environment, the schema
//! migrations run at start-up, and [`PgStore`].
//!
//! Plain TCP, no TLS (`NoTls`): the samples carry no TLS stack (static musl images, no
//! OpenSSL), and the demo's database is on the cluster's own node. A database across a
//! network you do not control needs TLS: a rustls connector (tokio-postgres-rustls)
//! plugs in where `NoTls` is.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::sync::Mutex;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls, Row};

use super::store::{Draft, OrderStore, StoreError, rfc3339};
use super::{Order, OrderLine};
use crate::config::{ConfigError, env_opt};

/// The longest one statement may take, the connection's round trip included. A statement
/// that takes longer drops its connection: the next request connects again.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);

/// The key of the advisory lock that makes replicas starting together migrate one at a
/// time ("orders" in ASCII).
const MIGRATION_LOCK: i64 = 0x6f72_6465_7273;

/// The schema, in order: (version, what it does, SQL). Append only: a version, once
/// released, never changes.
const MIGRATIONS: &[(i32, &str, &str)] = &[(
    1,
    "orders and their lines",
    "CREATE TABLE orders (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        user_id text NOT NULL,
        status text NOT NULL CHECK (status IN ('confirmed', 'declined')),
        total_cents bigint NOT NULL CHECK (total_cents >= 0),
        authorization_id text NOT NULL,
        reason text,
        placed_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE order_lines (
        order_id bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
        line_no integer NOT NULL,
        sku text NOT NULL,
        quantity integer NOT NULL CHECK (quantity > 0),
        unit_price_cents bigint NOT NULL CHECK (unit_price_cents >= 0),
        reservation_id text NOT NULL,
        PRIMARY KEY (order_id, line_no)
    );",
)];

/// The connection settings: `DB_URL` (`postgresql://user:password@host:port/dbname`), or
/// else `DB_HOST`, `DB_PORT` (5432), `DB_USER`, `DB_PASSWORD` and `DB_DATABASE` (the
/// user's name), the variables Flotilla injects for a `spec.backingServices` entry named
/// `db`. Errors never repeat the password.
pub fn config_from_env() -> Result<Config, ConfigError> {
    let mut config = if let Some(url) = env_opt("DB_URL") {
        Config::from_str(&url).map_err(|e| {
            ConfigError(format!(
                "DB_URL is not a valid postgresql://user:password@host:port/dbname URI: {e}"
            ))
        })?
    } else if let Some(host) = env_opt("DB_HOST") {
        let port = match env_opt("DB_PORT") {
            None => 5432,
            Some(p) => p
                .parse()
                .map_err(|e| ConfigError(format!("DB_PORT={p:?} is not valid: {e}")))?,
        };
        let user = env_opt("DB_USER").ok_or_else(|| {
            ConfigError("DB_HOST is set but DB_USER is not: set both (or DB_URL)".into())
        })?;
        let mut config = Config::new();
        config
            .host(&host)
            .port(port)
            .dbname(env_opt("DB_DATABASE").as_deref().unwrap_or(&user))
            .user(&user);
        if let Some(password) = env_opt("DB_PASSWORD") {
            config.password(password);
        }
        config
    } else {
        return Err(ConfigError(
            "DB_URL is not set: orders keeps its orders in PostgreSQL. Under Flotilla, add \
             `db: {type: postgres}` to the Microservice's spec.backingServices (its class \
             provides the database); elsewhere, set it, e.g. \
             DB_URL=postgresql://shop:secret@127.0.0.1:55432/shop (or DB_HOST, DB_PORT, \
             DB_USER, DB_PASSWORD, DB_DATABASE)"
                .into(),
        ));
    };
    if config.get_hosts().is_empty() {
        return Err(ConfigError("DB_URL names no host".into()));
    }
    config
        .application_name("orders")
        .connect_timeout(Duration::from_secs(2))
        // A database host that vanished without closing the connection is noticed in
        // about a minute rather than the kernel's two hours.
        .keepalives_idle(Duration::from_secs(30));
    Ok(config)
}

/// `user@host:port/dbname`, for logs: never the password.
pub fn describe(config: &Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
        None => "?".into(),
    };
    format!(
        "{}@{host}:{}/{}",
        config.get_user().unwrap_or("?"),
        config.get_ports().first().copied().unwrap_or(5432),
        config.get_dbname().unwrap_or("?")
    )
}

/// Applies the migrations `client`'s database lacks, in one transaction under an advisory
/// lock: replicas starting at once wait for each other, and the second finds nothing left
/// to do. Returns the versions it applied.
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Not the "already exists, skipping" notice at every start.
    tx.batch_execute("SET LOCAL client_min_messages TO warning")
        .await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version integer PRIMARY KEY,
            description text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let done: BTreeSet<i32> = tx
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut applied = Vec::new();
    for &(version, description, sql) in MIGRATIONS {
        if done.contains(&version) {
            continue;
        }
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
            &[&version, &description],
        )
        .await?;
        applied.push(version);
    }
    tx.commit().await?;
    // A newer release may have migrated further: its schema only adds, so this one works.
    if let Some(newer) = done.iter().find(|v| !MIGRATIONS.iter().any(|m| m.0 == **v)) {
        tracing::info!(
            version = newer,
            "the database has a newer schema than this release"
        );
    }
    Ok(applied)
}

/// The orders in PostgreSQL, over one connection shared by every request (tokio-postgres
/// pipelines concurrent statements on it). A connection that fails is dropped and the
/// next request makes a new one, migrating first if this process has not yet.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: Config,
    target: String,
    /// The live connection; one request at a time replaces it.
    client: Mutex<Option<Arc<Client>>>,
    migrated: AtomicBool,
}

impl PgStore {
    /// A store for `config`; it connects on first use.
    pub fn new(config: Config) -> Self {
        let target = describe(&config);
        Self {
            inner: Arc::new(Inner {
                config,
                target,
                client: Mutex::new(None),
                migrated: AtomicBool::new(false),
            }),
        }
    }

    /// `user@host:port/dbname`.
    pub fn target(&self) -> &str {
        &self.inner.target
    }

    /// The live connection, or a new one.
    async fn client(&self) -> Result<Arc<Client>, StoreError> {
        let mut slot = self.inner.client.lock().await;
        if let Some(client) = slot.as_ref()
            && !client.is_closed()
        {
            return Ok(client.clone());
        }
        *slot = None;
        let client = Arc::new(self.connect().await?);
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let target = &self.inner.target;
        let (mut client, connection) = self.inner.config.connect(NoTls).await.map_err(|e| {
            StoreError::Unavailable(format!("connecting to {target}: {}", chain(&e)))
        })?;
        let watched = target.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::warn!(database = %watched, error = %chain(&e), "database connection lost");
            }
        });
        if !self.inner.migrated.load(Ordering::SeqCst) {
            let applied = tokio::time::timeout(STATEMENT_TIMEOUT * 6, migrate(&mut client))
                .await
                .map_err(|_| StoreError::Unavailable(format!("migrating {target}: timed out")))?
                .map_err(|e| classify(&e, &format!("migrating {target}")))?;
            self.inner.migrated.store(true, Ordering::SeqCst);
            tracing::info!(database = %target, ?applied, "schema up to date");
        }
        tracing::info!(database = %target, "connected to the database");
        Ok(client)
    }

    /// Drops `client` if it is still the live one, so the next request reconnects.
    async fn discard(&self, client: &Arc<Client>) {
        let mut slot = self.inner.client.lock().await;
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, client)) {
            *slot = None;
        }
    }

    /// Runs `statement` on the live connection within [`STATEMENT_TIMEOUT`]; a failure
    /// that means the connection is gone drops it.
    async fn run<T, F, Fut>(&self, what: &str, statement: F) -> Result<T, StoreError>
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let client = self.client().await?;
        let outcome = tokio::time::timeout(STATEMENT_TIMEOUT, statement(client.clone())).await;
        let error = match outcome {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => classify(&e, what),
            Err(_) => {
                StoreError::Unavailable(format!("{what}: no answer within {STATEMENT_TIMEOUT:?}"))
            }
        };
        if matches!(error, StoreError::Unavailable(_)) || client.is_closed() {
            self.discard(&client).await;
        }
        Err(error)
    }
}

/// Unavailable for a lost connection or a database shutting down or starting
/// (SQLSTATE classes 08 and 57), failed for anything else.
fn classify(e: &tokio_postgres::Error, what: &str) -> StoreError {
    let message = format!("{what}: {}", chain(e));
    match e.code() {
        None => StoreError::Unavailable(message),
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57") => {
            StoreError::Unavailable(message)
        }
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => {
            StoreError::Unavailable(message)
        }
        Some(_) => StoreError::Failed(message),
    }
}

/// An error and its sources on one line ("db error" alone hides the server's message).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// Orders with their lines, newest first, as the two `SELECT`s below return them.
const SELECT_ORDERS: &str = "SELECT o.id, o.user_id, o.status, o.total_cents, o.authorization_id,
        o.reason, o.placed_at, l.sku, l.quantity, l.unit_price_cents, l.reservation_id
    FROM {orders} o JOIN order_lines l ON l.order_id = o.id
    ORDER BY o.id DESC, l.line_no";

/// Folds joined rows (one per line, grouped by order) into orders.
fn orders_of(rows: &[Row]) -> Vec<Order> {
    let mut orders: Vec<Order> = Vec::new();
    for row in rows {
        let id: i64 = row.get(0);
        let order_id = format!("o-{id}");
        if orders.last().is_none_or(|o| o.order_id != order_id) {
            let placed_at: SystemTime = row.get(6);
            orders.push(Order {
                order_id,
                user_id: row.get(1),
                status: row.get(2),
                total_cents: u64::try_from(row.get::<_, i64>(3)).unwrap_or_default(),
                authorization_id: row.get(4),
                reason: row.get(5),
                placed_at: rfc3339(placed_at),
                items: Vec::new(),
            });
        }
        let order = orders.last_mut().expect("pushed above");
        order.items.push(OrderLine {
            sku: row.get(7),
            quantity: u32::try_from(row.get::<_, i32>(8)).unwrap_or_default(),
            unit_price_cents: u64::try_from(row.get::<_, i64>(9)).unwrap_or_default(),
            reservation_id: row.get(10),
        });
    }
    orders
}

fn to_i64(what: &str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Failed(format!("{what} {value} is out of range")))
}

impl OrderStore for PgStore {
    async fn available(&self) -> Result<(), StoreError> {
        self.client().await.map(drop)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.run(
            "SELECT 1",
            |c| async move { c.simple_query("SELECT 1").await },
        )
        .await
        .map(drop)
    }

    async fn insert(&self, draft: Draft) -> Result<Order, StoreError> {
        let total = to_i64("total_cents", draft.total_cents)?;
        let skus: Vec<&str> = draft.items.iter().map(|l| l.sku.as_str()).collect();
        let quantities = draft
            .items
            .iter()
            .map(|l| i32::try_from(l.quantity))
            .collect::<Result<Vec<i32>, _>>()
            .map_err(|_| StoreError::Failed("a quantity is out of range".into()))?;
        let prices = draft
            .items
            .iter()
            .map(|l| to_i64("unit_price_cents", l.unit_price_cents))
            .collect::<Result<Vec<i64>, _>>()?;
        let reservations: Vec<&str> = draft
            .items
            .iter()
            .map(|l| l.reservation_id.as_str())
            .collect();
        let d = &draft;
        // One statement, so the order and its lines are stored together or not at all.
        let row = self
            .run("storing an order", |c| async move {
                c.query_one(
                    "WITH o AS (
                        INSERT INTO orders (user_id, status, total_cents, authorization_id, reason)
                        VALUES ($1, $2, $3, $4, $5) RETURNING id, placed_at
                    ), lines AS (
                        INSERT INTO order_lines
                            (order_id, line_no, sku, quantity, unit_price_cents, reservation_id)
                        SELECT o.id, l.n::integer, l.sku, l.quantity, l.price, l.reservation
                        FROM o, unnest($6::text[], $7::integer[], $8::bigint[], $9::text[])
                            WITH ORDINALITY AS l (sku, quantity, price, reservation, n)
                    )
                    SELECT id, placed_at FROM o",
                    &[
                        &d.user_id,
                        &d.status,
                        &total,
                        &d.authorization_id,
                        &d.reason,
                        &skus,
                        &quantities,
                        &prices,
                        &reservations,
                    ],
                )
                .await
            })
            .await?;
        let id: i64 = row.get(0);
        let placed_at: SystemTime = row.get(1);
        Ok(Order {
            order_id: format!("o-{id}"),
            status: draft.status.to_string(),
            user_id: draft.user_id,
            items: draft.items,
            total_cents: draft.total_cents,
            authorization_id: draft.authorization_id,
            reason: draft.reason,
            placed_at: rfc3339(placed_at),
        })
    }

    async fn list(&self, limit: u32) -> Result<Vec<Order>, StoreError> {
        let limit = i64::from(limit);
        let sql = SELECT_ORDERS.replace(
            "{orders}",
            "(SELECT * FROM orders ORDER BY id DESC LIMIT $1)",
        );
        let rows = self
            .run("listing orders", |c| async move {
                c.query(&sql, &[&limit]).await
            })
            .await?;
        Ok(orders_of(&rows))
    }

    async fn get(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let Some(id) = id.strip_prefix("o-").and_then(|n| n.parse::<i64>().ok()) else {
            return Ok(None);
        };
        let sql = SELECT_ORDERS.replace("{orders}", "(SELECT * FROM orders WHERE id = $1)");
        let rows = self
            .run("reading an order", |c| async move {
                c.query(&sql, &[&id]).await
            })
            .await?;
        Ok(orders_of(&rows).pop())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_never_shows_the_password() {
        let config = Config::from_str("postgresql://shop:s3cret@10.244.0.1:55432/shop_db").unwrap();
        assert_eq!(describe(&config), "shop@10.244.0.1:55432/shop_db");
    }

    #[tokio::test]
    async fn an_unreachable_database_is_unavailable_not_failed() {
        // Port 1 on loopback: refused at once.
        let mut config = Config::from_str("postgresql://shop:pw@127.0.0.1:1/shop").unwrap();
        config.connect_timeout(Duration::from_secs(2));
        let store = PgStore::new(config);
        for outcome in [store.available().await, store.ping().await] {
            match outcome {
                Err(StoreError::Unavailable(why)) => {
                    assert!(why.contains("shop@127.0.0.1:1/shop"), "{why}");
                    assert!(!why.contains("pw"), "{why}");
                }
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            store.list(1).await,
            Err(StoreError::Unavailable(_))
        ));
    }

    #[test]
    fn migrations_are_numbered_from_one_without_gaps() {
        for (i, (version, _, _)) in MIGRATIONS.iter().enumerate() {
            assert_eq!(*version as usize, i + 1);
        }
    }
}
