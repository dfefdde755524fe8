//! orders' PostgreSQL store against a real database, when `FLOTILLA_TEST_PG_URL` names
//! one (`postgresql://user:password@host:port/dbname`, e.g. from
//! `e2e/cluster/postgres.sh up && e2e/cluster/postgres.sh database orders_test`);
//! skipped otherwise. Works in a schema of its own, dropped at the end, so it can run
//! again on the same database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flotilla_samples::orders::OrderLine;
use flotilla_samples::orders::postgres::PgStore;
use flotilla_samples::orders::store::{Draft, OrderStore, StoreError};
use tokio_postgres::{Client, Config, NoTls};

async fn admin(config: &Config) -> Client {
    let (client, connection) = config.connect(NoTls).await.expect("connecting");
    tokio::spawn(connection);
    client
}

/// `url` with `search_path` set to `schema` and its own application name.
fn config(url: &str, schema: &str, name: &str) -> Config {
    let mut config = Config::from_str(url).expect("FLOTILLA_TEST_PG_URL");
    config
        .options(format!("-c search_path={schema}"))
        .application_name(name);
    config
}

fn line(sku: &str, quantity: u32, reservation: &str) -> OrderLine {
    OrderLine {
        sku: sku.into(),
        quantity,
        unit_price_cents: 1200,
        reservation_id: reservation.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_survive_in_postgres_and_the_connection_is_replaced() {
    let Ok(url) = std::env::var("FLOTILLA_TEST_PG_URL") else {
        eprintln!("skipped: FLOTILLA_TEST_PG_URL is not set (a postgresql:// URI to test against)");
        return;
    };
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let schema = format!("orders_test_{}_{nanos}", std::process::id());
    let admin = Arc::new(admin(&Config::from_str(&url).unwrap()).await);
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("creating the test schema");

    let (db, test_schema) = (admin.clone(), schema.clone());
    let outcome = async move {
        let (admin, schema) = (db, test_schema);
        // Two replicas starting at once: both migrate, under the advisory lock, and the
        // schema is made exactly once.
        let a = PgStore::new(config(&url, &schema, "orders-test-a"));
        let b = PgStore::new(config(&url, &schema, "orders-test-b"));
        let (ready_a, ready_b) = tokio::join!(a.ping(), b.ping());
        ready_a.expect("replica a");
        ready_b.expect("replica b");
        let versions: Vec<i32> = admin
            .query(
                &format!("SELECT version FROM {schema}.schema_migrations"),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(versions, [1]);

        // Stored by one replica, listed and read by the other.
        let placed = a
            .insert(Draft {
                user_id: "u-1".into(),
                items: vec![
                    line("mug-enamel", 2, "r-1"),
                    line("tea-earl-grey", 1, "r-2"),
                ],
                total_cents: 3600,
                status: "confirmed",
                authorization_id: "a-1".into(),
                reason: None,
            })
            .await
            .expect("insert");
        assert_eq!(placed.order_id, "o-1");
        assert!(placed.placed_at.ends_with('Z'), "{}", placed.placed_at);
        let declined = a
            .insert(Draft {
                user_id: "u-1".into(),
                items: vec![line("grinder-burr", 4, "r-3")],
                total_cents: 51600,
                status: "declined",
                authorization_id: "a-2".into(),
                reason: Some("over the limit".into()),
            })
            .await
            .expect("insert");
        let listed = b.list(100).await.expect("list");
        assert_eq!(listed, [declined.clone(), placed.clone()], "newest first");
        assert_eq!(b.list(1).await.unwrap(), [declined]);
        assert_eq!(b.get("o-1").await.unwrap(), Some(placed.clone()));
        assert_eq!(b.get("o-99").await.unwrap(), None);
        assert_eq!(b.get("nonsense").await.unwrap(), None);

        // The database drops replica a's connection (as a restart does): at most one
        // request sees it gone (503), and the next one gets a new connection.
        let killed = admin
            .execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = 'orders-test-a'",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(killed, 1);
        let mut failures = Vec::new();
        let found = loop {
            match a.get("o-1").await {
                Ok(found) => break found,
                Err(e) => {
                    assert!(matches!(e, StoreError::Unavailable(_)), "{e}");
                    failures.push(e);
                    assert!(failures.len() < 2, "no new connection: {failures:?}");
                }
            }
        };
        assert_eq!(found, Some(placed));
        eprintln!(
            "after the connection was killed: {} failed request(s) before reconnecting",
            failures.len()
        );
    };
    // Run the checks, then drop the schema whatever they found.
    let result = tokio::spawn(outcome).await;
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .expect("dropping the test schema");
    if let Err(panic) = result {
        std::panic::resume_unwind(panic.into_panic());
    }
}
