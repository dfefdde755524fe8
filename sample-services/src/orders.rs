//! `orders`: places an order across the other services (check the user, reserve the
//! stock, authorize the payment, then commit or release the reservations) and lists the
//! orders this replica took. State lives in memory.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::inventory::Reservation;
use crate::payments::{Authorization, Decision};
use crate::server::Service;
use crate::{ApiError, ConfigError, Upstream};

/// The most lines one order may have.
const MAX_ITEMS: usize = 20;

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
            (u, i, p) => Err(ConfigError(
                [u.err(), i.err(), p.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.0)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrder {
    pub user_id: String,
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
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
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Default)]
struct Book {
    next: u64,
    orders: Vec<Order>,
}

#[derive(Clone)]
struct AppState {
    deps: Dependencies,
    /// Distinguishes this replica's order ids from its siblings'.
    id_prefix: String,
    book: Arc<Mutex<Book>>,
    outcomes: Family<StatusLabel, Counter>,
}

pub fn routes(deps: Dependencies) -> Router {
    routes_with(deps, replica_id(), Family::default())
}

fn routes_with(
    deps: Dependencies,
    id_prefix: String,
    outcomes: Family<StatusLabel, Counter>,
) -> Router {
    Router::new()
        .route("/orders", get(list).post(place))
        .route("/orders/{id}", get(find))
        .with_state(AppState {
            deps,
            id_prefix,
            book: Arc::default(),
            outcomes,
        })
}

/// `main` of the `orders` binary.
pub fn build(service: &mut Service) -> Result<Router, ConfigError> {
    let deps = Dependencies::from_env()?;
    let outcomes = Family::<StatusLabel, Counter>::default();
    service.registry().register(
        "orders",
        "Orders by outcome (confirmed, declined, rejected, failed)",
        outcomes.clone(),
    );
    tracing::info!(
        users = deps.users.base_url(),
        inventory = deps.inventory.base_url(),
        payments = deps.payments.base_url(),
        "dependencies"
    );
    Ok(routes_with(deps, replica_id(), outcomes))
}

/// The pod name's random suffix (`orders-7d9f-x7k2p` → `x7k2p`), or the process id.
fn replica_id() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .and_then(|h| h.rsplit('-').next().map(str::to_string))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| std::process::id().to_string())
}

async fn list(State(app): State<AppState>) -> Json<Vec<Order>> {
    Json(app.book.lock().expect("orders lock").orders.clone())
}

async fn find(
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Order>, ApiError> {
    app.book
        .lock()
        .expect("orders lock")
        .orders
        .iter()
        .find(|o| o.order_id == id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no order {id} on this replica")))
}

async fn place(
    State(app): State<AppState>,
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

async fn place_order(
    app: &AppState,
    order: NewOrder,
) -> Result<(StatusCode, Json<Order>), ApiError> {
    validate(&order)?;
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

    if authorization.status == Decision::Declined {
        release_all(deps, &held).await;
        let declined = record(
            app,
            &order.user_id,
            lines,
            total_cents,
            &authorization,
            "declined",
        );
        tracing::info!(order_id = %declined.order_id, total_cents, "order declined, stock released");
        return Ok((StatusCode::PAYMENT_REQUIRED, Json(declined)));
    }

    for (i, reservation) in held.iter().enumerate() {
        let path = format!("/reservations/{}/commit", reservation.reservation_id);
        let committed = deps.inventory.post_json(&path, &json!({})).await;
        let failure = match committed {
            Ok(reply) if reply.status == StatusCode::OK => continue,
            Ok(reply) => format!("inventory answered HTTP {} to {path}", reply.status),
            Err(e) => e.to_string(),
        };
        // What is already committed stays sold; the rest goes back on the shelf.
        release_all(deps, &held[i..]).await;
        return Err(ApiError::bad_gateway(format!(
            "{failure}; payment {} was authorized but the order is not confirmed",
            authorization.authorization_id
        )));
    }

    let confirmed = record(
        app,
        &order.user_id,
        lines,
        total_cents,
        &authorization,
        "confirmed",
    );
    tracing::info!(order_id = %confirmed.order_id, user_id = %confirmed.user_id, total_cents, "order confirmed");
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

fn record(
    app: &AppState,
    user_id: &str,
    items: Vec<OrderLine>,
    total_cents: u64,
    authorization: &Authorization,
    status: &str,
) -> Order {
    let mut book = app.book.lock().expect("orders lock");
    book.next += 1;
    let order = Order {
        order_id: format!("o-{}-{}", app.id_prefix, book.next),
        user_id: user_id.to_string(),
        items,
        total_cents,
        status: status.to_string(),
        authorization_id: authorization.authorization_id.clone(),
        reason: authorization.reason.clone(),
    };
    book.orders.push(order.clone());
    order
}

#[cfg(test)]
mod tests {
    use axum::routing::post;

    use super::*;
    use crate::testing::call;
    use crate::{inventory, payments, users};

    struct Shop {
        users: Router,
        inventory: Router,
        orders: Router,
    }

    fn shop_with_payments(payments: Router) -> Shop {
        let users = users::routes();
        let inventory = inventory::routes(inventory::seed());
        let orders = routes_with(
            Dependencies {
                users: Upstream::in_process("users", users.clone()),
                inventory: Upstream::in_process("inventory", inventory.clone()),
                payments: Upstream::in_process("payments", payments),
            },
            "test".into(),
            Family::default(),
        );
        Shop {
            users,
            inventory,
            orders,
        }
    }

    fn shop() -> Shop {
        shop_with_payments(payments::routes(payments::DEFAULT_LIMIT_CENTS))
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
            let (_, product) =
                call(&self.inventory, "GET", &format!("/products/{sku}"), None).await;
            product["available"].as_u64().unwrap()
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
        assert_eq!(order["orderId"], "o-test-1");
        assert_eq!(shop.available("mug-enamel").await, 38);
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let (status, _) = call(&shop.orders, "GET", "/orders/o-test-1", None).await;
        assert_eq!(status, StatusCode::OK);
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
        let (_, listed) = call(&shop.orders, "GET", "/orders", None).await;
        assert_eq!(listed.as_array().unwrap().len(), 10);
    }
}
