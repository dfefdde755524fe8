//! `orders`: places an order across the other services (check the user, reserve the
//! stock, authorize the payment), keeps it in PostgreSQL, and publishes `order.placed`
//! for inventory to commit the stock. Every replica lists every order.

pub mod postgres;
pub mod store;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use serde_json::json;

use self::postgres::PgStore;
use self::store::{Draft, OrderStore};
use crate::events::{
    self, Broker, EventCounter, EventLabels, ORDER_PLACED, OrderPlaced, Publisher,
};
use crate::inventory::Reservation;
use crate::payments::{Authorization, Decision};
use crate::server::Service;
use crate::{ApiError, ConfigError, Upstream};

/// The most lines one order may have.
const MAX_ITEMS: usize = 20;

/// The most orders `GET /orders` lists, newest first.
const LIST_LIMIT: u32 = 100;

/// Where orders reaches the services it calls.
#[derive(Clone)]
pub struct Dependencies {
    pub users: Upstream,
    pub inventory: Upstream,
    pub payments: Upstream,
}

impl Dependencies {
    /// From `USERS_URL`, `INVENTORY_URL` and `PAYMENTS_URL`; every missing one is named.
    pub fn from_env() -> Result<Self, ConfigError> {
        let users = Upstream::from_env("orders", "users");
        let inventory = Upstream::from_env("orders", "inventory");
        let payments = Upstream::from_env("orders", "payments");
        match (users, inventory, payments) {
            (Ok(users), Ok(inventory), Ok(payments)) => Ok(Self {
                users,
                inventory,
                payments,
            }),
            (u, i, p) => Err(joined([u.err(), i.err(), p.err()])),
        }
    }
}

/// Every configuration error, in one message.
fn joined(errors: impl IntoIterator<Item = Option<ConfigError>>) -> ConfigError {
    ConfigError(
        errors
            .into_iter()
            .flatten()
            .map(|e| e.0)
            .collect::<Vec<_>>()
            .join("; "),
    )
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    pub user_id: String,
    pub items: Vec<Item>,
}

/// A line of an order as asked for: the same in the request and in `order.placed`.
pub use crate::events::Item;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
    /// The inventory reservation holding the line's stock.
    pub reservation_id: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<OrderLine>,
    pub total_cents: u64,
    /// `confirmed` or `declined`.
    pub status: String,
    pub authorization_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When the order was stored: RFC 3339, UTC.
    pub placed_at: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Clone)]
struct AppState<S> {
    deps: Dependencies,
    store: S,
    events: Publisher,
    outcomes: Family<StatusLabel, Counter>,
    published: EventCounter,
}

/// The routes over `store`, publishing through `events`.
pub fn routes<S: OrderStore>(deps: Dependencies, store: S, events: Publisher) -> Router {
    routes_with(deps, store, events, Family::default(), Family::default())
}

fn routes_with<S: OrderStore>(
    deps: Dependencies,
    store: S,
    events: Publisher,
    outcomes: Family<StatusLabel, Counter>,
    published: EventCounter,
) -> Router {
    Router::new()
        .route("/orders", get(list::<S>).post(place::<S>))
        .route("/orders/{id}", get(find::<S>))
        .with_state(AppState {
            deps,
            store,
            events,
            outcomes,
            published,
        })
}

/// `main` of the `orders` binary: the dependencies, the database (`DB_URL`) and the
/// broker (`EVENTS_URL`) from the environment; not ready while the database is not.
pub fn build(service: &mut Service) -> Result<Router, ConfigError> {
    let deps = Dependencies::from_env();
    let database = postgres::config_from_env();
    let events_url = events::url_from_env("orders");
    let (deps, database, events_url) = match (deps, database, events_url) {
        (Ok(d), Ok(db), Ok(e)) => (d, db, e),
        (d, db, e) => return Err(joined([d.err(), db.err(), e.err()])),
    };
    let outcomes = Family::<StatusLabel, Counter>::default();
    service.registry().register(
        "orders",
        "Orders by outcome (confirmed, declined, rejected, failed)",
        outcomes.clone(),
    );
    let published = EventCounter::default();
    service.registry().register(
        "events_published",
        "Events published, by subject and outcome (ok, failed)",
        published.clone(),
    );
    let store = PgStore::new(database);
    // Connect (and migrate) now rather than on the first request or probe.
    let starting = store.clone();
    tokio::spawn(async move {
        if let Err(e) = starting.ping().await {
            tracing::warn!(error = %e, "the database is not reachable yet");
        }
    });
    let ping = store.clone();
    // The database is this service's own state: without it no request can be answered.
    // The broker is not checked here: without it only new orders fail (503, before any
    // stock or money is taken), and listing and reading orders still work.
    service.ready_when("database", move || {
        let store = ping.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    let broker = Broker::start("orders", events_url);
    tracing::info!(
        users = deps.users.base_url(),
        inventory = deps.inventory.base_url(),
        payments = deps.payments.base_url(),
        database = store.target(),
        events = broker.url(),
        "dependencies"
    );
    Ok(routes_with(
        deps,
        store,
        Publisher::Nats(broker),
        outcomes,
        published,
    ))
}

async fn list<S: OrderStore>(State(app): State<AppState<S>>) -> Result<Json<Vec<Order>>, ApiError> {
    Ok(Json(app.store.list(LIST_LIMIT).await?))
}

async fn find<S: OrderStore>(
    State(app): State<AppState<S>>,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    app.store
        .get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id}")))
}

async fn place<S: OrderStore>(
    State(app): State<AppState<S>>,
    Json(order): Json<NewOrder>,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    let result = place_order(&app, order).await;
    let status = match &result {
        Ok((StatusCode::CREATED, _)) => "confirmed",
        Ok(_) => "declined",
        Err(e) if e.status.is_server_error() => "failed",
        Err(_) => "rejected",
    };
    app.outcomes.get_or_create(&StatusLabel { status }).inc();
    result
}

async fn place_order<S: OrderStore>(
    app: &AppState<S>,
    order: NewOrder,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    validate(&order)?;
    // Before any stock or money is taken: an order that could not be stored, or whose
    // event could not reach inventory, is refused now (503) rather than after the charge.
    app.store.available().await?;
    app.events.ready().map_err(|why| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the events broker is unreachable, no order is taken: {why}"),
        )
    })?;
    let deps = &app.deps;

    let user = deps
        .users
        .get(&format!("/users/{}", order.user_id))
        .await
        .map_err(|e| ApiError::bad_gateway(e.to_string()))?;
    match user.status {
        StatusCode::OK => {}
        StatusCode::NOT_FOUND => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("unknown user {}", order.user_id),
            ));
        }
        other => {
            return Err(ApiError::bad_gateway(format!(
                "users answered HTTP {other} for {}",
                order.user_id
            )));
        }
    }

    // From the first reservation on, every way out that does not confirm releases what
    // is held, so a failed order never keeps stock off the shelf.
    let mut held: Vec<Reservation> = Vec::new();
    for item in &order.items {
        let outcome = deps.inventory.post_json("/reservations", item).await;
        let failure = match outcome {
            Ok(reply) if reply.status == StatusCode::CREATED => match reply.json(&deps.inventory) {
                Ok(reservation) => {
                    held.push(reservation);
                    continue;
                }
                Err(e) => ApiError::bad_gateway(e.to_string()),
            },
            Ok(reply) if matches!(reply.status, StatusCode::CONFLICT | StatusCode::NOT_FOUND) => {
                let detail = reply.value();
                ApiError::new(
                    StatusCode::CONFLICT,
                    detail["error"]
                        .as_str()
                        .unwrap_or("cannot reserve")
                        .to_string(),
                )
                .with("status", "rejected")
                .with("sku", item.sku.clone())
            }
            Ok(reply) => ApiError::bad_gateway(format!(
                "inventory answered HTTP {} reserving {}",
                reply.status, item.sku
            )),
            Err(e) => ApiError::bad_gateway(e.to_string()),
        };
        release_all(deps, &held).await;
        return Err(failure);
    }

    let lines: Vec<OrderLine> = held
        .iter()
        .map(|r| OrderLine {
            sku: r.sku.clone(),
            quantity: r.quantity,
            unit_price_cents: r.unit_price_cents,
            reservation_id: r.reservation_id.clone(),
        })
        .collect();
    let total_cents: u64 = lines
        .iter()
        .map(|l| u64::from(l.quantity) * l.unit_price_cents)
        .sum();

    let authorization = match authorize(deps, &order.user_id, total_cents).await {
        Ok(a) => a,
        Err(e) => {
            release_all(deps, &held).await;
            return Err(e);
        }
    };
    let draft = |status| Draft {
        user_id: order.user_id.clone(),
        items: lines.clone(),
        total_cents,
        status,
        authorization_id: authorization.authorization_id.clone(),
        reason: authorization.reason.clone(),
    };

    if authorization.status == Decision::Declined {
        release_all(deps, &held).await;
        let declined = app.store.insert(draft("declined")).await?;
        tracing::info!(order_id = %declined.order_id, total_cents, "order declined, stock released");
        return Ok((StatusCode::PAYMENT_REQUIRED, Json(declined)));
    }

    let confirmed = match app.store.insert(draft("confirmed")).await {
        Ok(order) => order,
        Err(e) => {
            release_all(deps, &held).await;
            let mut error = ApiError::from(e);
            error.body["error"] = format!(
                "{}; payment {} was authorized but the order is not confirmed",
                error.body["error"].as_str().unwrap_or_default(),
                authorization.authorization_id
            )
            .into();
            return Err(error);
        }
    };
    tracing::info!(order_id = %confirmed.order_id, user_id = %confirmed.user_id, total_cents, "order confirmed");

    // Inventory commits the reservations (the stock leaves the shelf) when it receives
    // this. The order is stored and paid whatever happens to the event: a failure is
    // logged and counted, and its reservations stay held until released by hand.
    let event = OrderPlaced {
        order_id: confirmed.order_id.clone(),
        user_id: confirmed.user_id.clone(),
        items: order.items.clone(),
        reservations: held.iter().map(|r| r.reservation_id.clone()).collect(),
        placed_at: confirmed.placed_at.clone(),
    };
    let outcome = match app.events.publish(ORDER_PLACED, &event).await {
        Ok(()) => "ok",
        Err(e) => {
            tracing::error!(order_id = %confirmed.order_id, error = %e, reservations = ?event.reservations, "order.placed not published: its reservations stay held");
            "failed"
        }
    };
    app.published
        .get_or_create(&EventLabels {
            subject: ORDER_PLACED,
            outcome,
        })
        .inc();
    Ok((StatusCode::CREATED, Json(confirmed)))
}

fn validate(order: &NewOrder) -> Result<(), ApiError> {
    let id_ok = !order.user_id.is_empty()
        && order.user_id.len() <= 64
        && order
            .user_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        return Err(ApiError::bad_request(
            "userId must be 1-64 letters, digits, '-' or '_'",
        ));
    }
    if order.items.is_empty() || order.items.len() > MAX_ITEMS {
        return Err(ApiError::bad_request(format!(
            "an order has 1 to {MAX_ITEMS} items"
        )));
    }
    if let Some(item) = order
        .items
        .iter()
        .find(|i| i.quantity == 0 || i.sku.is_empty())
    {
        return Err(ApiError::bad_request(format!(
            "item {:?}: sku must be set and quantity at least 1",
            item.sku
        )));
    }
    Ok(())
}

async fn authorize(
    deps: &Dependencies,
    user_id: &str,
    amount_cents: u64,
) -> Result<Authorization, ApiError> {
    let reply = deps
        .payments
        .post_json(
            "/authorizations",
            &json!({"userId": user_id, "amount_cents": amount_cents}),
        )
        .await
        .map_err(|e| ApiError::bad_gateway(e.to_string()))?;
    if reply.status != StatusCode::OK {
        return Err(ApiError::bad_gateway(format!(
            "payments answered HTTP {}: {}",
            reply.status,
            String::from_utf8_lossy(&reply.body)
        )));
    }
    reply
        .json(&deps.payments)
        .map_err(|e| ApiError::bad_gateway(e.to_string()))
}

/// Releases held reservations; failures are logged, not returned: the caller is already
/// answering with the reason the order failed.
async fn release_all(deps: &Dependencies, held: &[Reservation]) {
    for reservation in held {
        let path = format!("/reservations/{}", reservation.reservation_id);
        match deps.inventory.delete(&path).await {
            Ok(reply) if reply.status == StatusCode::OK => {}
            Ok(reply) => {
                tracing::warn!(reservation_id = %reservation.reservation_id, status = %reply.status, "release refused")
            }
            Err(e) => {
                tracing::warn!(reservation_id = %reservation.reservation_id, error = %e, "release failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::routing::post;

    use super::*;
    use crate::inventory::Inventory;
    use crate::orders::store::MemoryStore;
    use crate::testing::call;
    use crate::{inventory, payments, users};

    struct Shop {
        users: Router,
        inventory: Router,
        orders: Router,
        store: MemoryStore,
        published: EventCounter,
    }

    /// The five services wired in-process: `order.placed` goes straight to inventory's
    /// handler, as the broker would deliver it.
    fn shop_with(payments: Router, events: Option<Publisher>) -> Shop {
        let users = users::routes();
        let inventory = Inventory::new(inventory::seed());
        let consumer = inventory.clone();
        let events = events.unwrap_or_else(|| {
            Publisher::in_process(move |subject, payload| {
                assert_eq!(subject, ORDER_PLACED);
                consumer.on_order_placed(payload);
                Ok(())
            })
        });
        let store = MemoryStore::default();
        let published = EventCounter::default();
        let orders = routes_with(
            Dependencies {
                users: Upstream::in_process("users", users.clone()),
                inventory: Upstream::in_process("inventory", inventory.router()),
                payments: Upstream::in_process("payments", payments),
            },
            store.clone(),
            events,
            Family::default(),
            published.clone(),
        );
        Shop {
            users,
            inventory: inventory.router(),
            orders,
            store,
            published,
        }
    }

    fn shop_with_payments(payments: Router) -> Shop {
        shop_with(payments, None)
    }

    fn shop() -> Shop {
        shop_with_payments(payments::routes(payments::DEFAULT_LIMIT_CENTS))
    }

    fn shop_publishing(events: Publisher) -> Shop {
        shop_with(
            payments::routes(payments::DEFAULT_LIMIT_CENTS),
            Some(events),
        )
    }

    impl Shop {
        async fn user(&self) -> String {
            let (status, user) = call(
                &self.users,
                "POST",
                "/users",
                Some(json!({"name": "Ada", "email": "ada@example.com"})),
            )
            .await;
            assert_eq!(status, StatusCode::CREATED);
            user["id"].as_str().unwrap().to_string()
        }

        async fn available(&self, sku: &str) -> u64 {
            self.product(sku).await["available"].as_u64().unwrap()
        }

        /// Units on the shelf: down once inventory has consumed the order's event.
        async fn stock(&self, sku: &str) -> u64 {
            self.product(sku).await["stock"].as_u64().unwrap()
        }

        async fn product(&self, sku: &str) -> serde_json::Value {
            call(&self.inventory, "GET", &format!("/products/{sku}"), None)
                .await
                .1
        }

        fn published(&self, outcome: &'static str) -> u64 {
            self.published
                .get_or_create(&EventLabels {
                    subject: ORDER_PLACED,
                    outcome,
                })
                .get()
        }

        async fn order(
            &self,
            user: &str,
            items: serde_json::Value,
        ) -> (StatusCode, serde_json::Value) {
            call(
                &self.orders,
                "POST",
                "/orders",
                Some(json!({"userId": user, "items": items})),
            )
            .await
        }
    }

    #[tokio::test]
    async fn a_paid_order_is_confirmed_and_its_stock_sold() {
        let shop = shop();
        let user = shop.user().await;
        let (status, order) = shop
            .order(&user, json!([{"sku": "mug-enamel", "quantity": 2}, {"sku": "tea-earl-grey", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(order["status"], "confirmed");
        assert_eq!(order["totalCents"], 2 * 1200 + 650);
        assert_eq!(order["orderId"], "o-1");
        assert!(order["items"][0]["reservationId"].is_string(), "{order}");
        assert!(
            order["placedAt"].as_str().unwrap().ends_with('Z'),
            "{order}"
        );
        // Reserved at once; taken off the shelf by inventory on order.placed.
        assert_eq!(shop.available("mug-enamel").await, 38);
        assert_eq!(shop.stock("mug-enamel").await, 38);
        assert_eq!(shop.stock("tea-earl-grey").await, 99);
        assert_eq!(shop.published("ok"), 1);
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let (status, found) = call(&shop.orders, "GET", "/orders/o-1", None).await;
        assert_eq!((status, &found), (StatusCode::OK, &order));
        let (status, _) = call(&shop.orders, "GET", "/orders/o-2", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn a_declined_payment_releases_the_stock() {
        let shop = shop();
        let user = shop.user().await;
        // 4 × 12900 = 51600 cents, over the 50000 limit.
        let (status, order) = shop
            .order(&user, json!([{"sku": "grinder-burr", "quantity": 4}]))
            .await;
        assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{order}");
        assert_eq!(order["status"], "declined");
        assert_eq!(shop.available("grinder-burr").await, 5);
        assert_eq!(shop.stock("grinder-burr").await, 5);
        assert_eq!(shop.published("ok"), 0, "a declined order is no sale");
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(
            listed[0]["status"], "declined",
            "declined orders are kept too"
        );
    }

    #[tokio::test]
    async fn an_unreachable_database_refuses_orders_with_503_before_taking_stock() {
        let shop = shop();
        let user = shop.user().await;
        shop.store.set_down(true);
        let (status, body) = shop
            .order(&user, json!([{"sku": "mug-enamel", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("database is unavailable"),
            "{body}"
        );
        assert_eq!(shop.available("mug-enamel").await, 40);
        let (status, _) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let (status, _) = call(&shop.orders, "GET", "/orders/o-1", None).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

        // Back: orders are taken again, with nothing left over from the refusals.
        shop.store.set_down(false);
        let (status, order) = shop
            .order(&user, json!([{"sku": "mug-enamel", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(shop.stock("mug-enamel").await, 39);
    }

    #[tokio::test]
    async fn an_unreachable_broker_refuses_orders_with_503_before_taking_stock() {
        let broker = Broker::unconnected("orders", "nats://127.0.0.1:1".into());
        let shop = shop_publishing(Publisher::Nats(broker));
        let user = shop.user().await;
        let (status, body) = shop
            .order(&user, json!([{"sku": "kettle-steel", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("events broker is unreachable"),
            "{body}"
        );
        assert_eq!(shop.available("kettle-steel").await, 10);
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(listed, json!([]), "nothing stored");
    }

    #[tokio::test]
    async fn an_event_lost_on_the_way_leaves_the_order_confirmed_and_its_stock_held() {
        let shop = shop_publishing(Publisher::in_process(|_, _| Err("broker gone".into())));
        let user = shop.user().await;
        let (status, order) = shop
            .order(&user, json!([{"sku": "kettle-steel", "quantity": 2}]))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        assert_eq!(shop.published("failed"), 1);
        assert_eq!(shop.available("kettle-steel").await, 8, "still reserved");
        assert_eq!(shop.stock("kettle-steel").await, 10, "never committed");
        let (status, _) = call(&shop.orders, "GET", "/orders/o-1", None).await;
        assert_eq!(status, StatusCode::OK);
    }

    #[tokio::test]
    async fn unknown_users_and_short_stock_are_refused_without_keeping_stock() {
        let shop = shop();
        let (status, body) = shop
            .order("u-404", json!([{"sku": "mug-enamel", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(shop.available("mug-enamel").await, 40);

        let user = shop.user().await;
        // The first line is reserved, the second cannot be: the first must be released.
        let (status, body) = shop
            .order(&user, json!([{"sku": "mug-enamel", "quantity": 3}, {"sku": "kettle-steel", "quantity": 11}]))
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert_eq!(body["sku"], "kettle-steel");
        assert_eq!(shop.available("mug-enamel").await, 40);
        assert_eq!(shop.available("kettle-steel").await, 10);

        let (status, _) = shop.order(&user, json!([])).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = shop
            .order("../admin", json!([{"sku": "mug-enamel", "quantity": 1}]))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn a_failing_payments_service_is_a_502_and_the_stock_is_released() {
        let broken = Router::new().route(
            "/authorizations",
            post(|| async { StatusCode::INTERNAL_SERVER_ERROR }),
        );
        let shop = shop_with_payments(broken);
        let user = shop.user().await;
        let (status, body) = shop
            .order(&user, json!([{"sku": "kettle-steel", "quantity": 2}]))
            .await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("payments answered HTTP 500"),
            "{body}"
        );
        assert_eq!(shop.available("kettle-steel").await, 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_orders_sell_the_stock_exactly_once() {
        let shop = Arc::new(shop());
        let user = shop.user().await;
        let tasks: Vec<_> = (0..40)
            .map(|_| {
                let shop = shop.clone();
                let user = user.clone();
                tokio::spawn(async move {
                    shop.order(&user, json!([{"sku": "kettle-steel", "quantity": 1}]))
                        .await
                })
            })
            .collect();
        let mut confirmed = std::collections::BTreeSet::new();
        for task in futures::future::join_all(tasks).await {
            let (status, body) = task.unwrap();
            match status {
                StatusCode::CREATED => assert!(
                    confirmed.insert(body["orderId"].to_string()),
                    "duplicate id {body}"
                ),
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}: {body}"),
            }
        }
        assert_eq!(confirmed.len(), 10, "the kettle stock is 10");
        assert_eq!(shop.available("kettle-steel").await, 0);
        assert_eq!(shop.stock("kettle-steel").await, 0);
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(listed.as_array().unwrap().len(), 10);
    }
}
