//! `inventory`: the product catalogue and its stock. Orders reserve stock, then the
//! reservation is committed (sold: the stock leaves the shelf), on the `order.placed`
//! event orders publishes, or released (available again). State lives in memory, behind
//! one mutex, so concurrent reservations can never oversell.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::events::{self, Broker, EventCounter, EventLabels, ORDER_PLACED, OrderPlaced};
use crate::server::Service;
use crate::{ApiError, ConfigError};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price_cents: u64,
    /// Units neither reserved nor sold: what an order can still reserve.
    pub available: u32,
    /// Units on the shelf, reserved ones included: a sale (a committed reservation)
    /// takes them off.
    pub stock: u32,
}

/// The catalogue every inventory starts with.
pub fn seed() -> Vec<Product> {
    [
        ("tea-earl-grey", "Earl Grey tea, 100 g", 650, 100),
        ("beans-espresso", "Espresso beans, 1 kg", 2400, 30),
        ("mug-enamel", "Enamel mug", 1200, 40),
        ("kettle-steel", "Stovetop kettle", 3900, 10),
        ("grinder-burr", "Hand burr grinder", 12900, 5),
    ]
    .into_iter()
    .map(|(sku, name, price_cents, available)| Product {
        sku: sku.into(),
        name: name.into(),
        price_cents,
        available,
        stock: available,
    })
    .collect()
}

#[derive(Debug, Deserialize)]
pub struct ReservationRequest {
    pub sku: String,
    pub quantity: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub reservation_id: String,
    pub sku: String,
    pub quantity: u32,
    pub unit_price_cents: u64,
    pub status: ReservationStatus,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ReservationStatus {
    Held,
    Committed,
}

#[derive(Default)]
struct Stock {
    products: BTreeMap<String, Product>,
    /// Held and committed reservations; a released one is removed, its units returned.
    reservations: HashMap<String, Reservation>,
    next_id: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: &'static str,
}

/// The inventory: its routes, and the handler of `order.placed`.
#[derive(Clone)]
pub struct Inventory {
    stock: Arc<Mutex<Stock>>,
    reservations: Family<Outcome, Counter>,
    consumed: EventCounter,
}

impl Inventory {
    pub fn new(catalogue: Vec<Product>) -> Self {
        Self::with_metrics(catalogue, Family::default(), EventCounter::default())
    }

    fn with_metrics(
        catalogue: Vec<Product>,
        reservations: Family<Outcome, Counter>,
        consumed: EventCounter,
    ) -> Self {
        let stock = Stock {
            products: catalogue.into_iter().map(|p| (p.sku.clone(), p)).collect(),
            ..Stock::default()
        };
        Self {
            stock: Arc::new(Mutex::new(stock)),
            reservations,
            consumed,
        }
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/products", get(list))
            .route("/products/{sku}", get(product))
            .route("/reservations", post(reserve))
            .route("/reservations/{id}", delete(release))
            .route("/reservations/{id}/commit", post(commit))
            .with_state(self.clone())
    }

    /// Commits the reservations of an `order.placed` event (its JSON payload). Returns
    /// the outcome it counts: `committed`, `unknown` when a reservation is not known (this
    /// process restarted since it was made), or `invalid`.
    pub fn on_order_placed(&self, payload: &[u8]) -> &'static str {
        let outcome = match serde_json::from_slice::<OrderPlaced>(payload) {
            Ok(event) => {
                let mut outcome = "committed";
                for id in &event.reservations {
                    if self.commit_reservation(id).is_none() {
                        tracing::warn!(order_id = %event.order_id, reservation_id = %id, "order.placed names an unknown reservation");
                        outcome = "unknown";
                    }
                }
                tracing::info!(order_id = %event.order_id, reservations = ?event.reservations, outcome, "order.placed consumed");
                outcome
            }
            Err(e) => {
                tracing::warn!(error = %e, payload = %String::from_utf8_lossy(payload), "order.placed is not valid");
                "invalid"
            }
        };
        self.consumed
            .get_or_create(&EventLabels {
                subject: ORDER_PLACED,
                outcome,
            })
            .inc();
        outcome
    }

    /// Marks reservation `id` sold and takes its units off the shelf, once: a second
    /// commit (a retried request, an event delivered twice) changes nothing.
    fn commit_reservation(&self, id: &str) -> Option<Reservation> {
        let reservation = {
            let mut stock = self.stock.lock().expect("stock lock");
            let reservation = stock.reservations.get_mut(id)?;
            let first = reservation.status == ReservationStatus::Held;
            reservation.status = ReservationStatus::Committed;
            let reservation = reservation.clone();
            if first && let Some(product) = stock.products.get_mut(&reservation.sku) {
                product.stock = product.stock.saturating_sub(reservation.quantity);
            }
            reservation
        };
        self.reservations
            .get_or_create(&Outcome {
                outcome: "committed",
            })
            .inc();
        tracing::info!(reservation_id = %id, sku = %reservation.sku, quantity = reservation.quantity, "reservation committed");
        Some(reservation)
    }
}

/// The service's routes over `catalogue`.
pub fn routes(catalogue: Vec<Product>) -> Router {
    Inventory::new(catalogue).router()
}

/// `main` of the `inventory` binary: the seeded catalogue, and `order.placed` from the
/// broker at `EVENTS_URL`. Not ready until subscribed: orders' sales would be missed.
pub fn build(service: &mut Service) -> Result<Router, ConfigError> {
    let url = events::url_from_env("inventory")?;
    let reservations = Family::<Outcome, Counter>::default();
    service.registry().register(
        "inventory_reservations",
        "Reservation requests by outcome (reserved, insufficient, committed, released)",
        reservations.clone(),
    );
    let consumed = EventCounter::default();
    service.registry().register(
        "events_consumed",
        "Events consumed, by subject and outcome (committed, unknown, invalid)",
        consumed.clone(),
    );
    let inventory = Inventory::with_metrics(seed(), reservations, consumed);
    let broker = Broker::start("inventory", url);
    tracing::info!(events = broker.url(), "dependencies");
    let handler = inventory.clone();
    let subscribed = events::consume(broker.clone(), ORDER_PLACED, move |payload| {
        handler.on_order_placed(payload);
    });
    service.ready_when("events", move || {
        let ready = if subscribed.load(Ordering::SeqCst) {
            broker.connected()
        } else {
            Err(format!("not subscribed to {ORDER_PLACED} yet"))
        };
        async move { ready }
    });
    Ok(inventory.router())
}

async fn list(State(app): State<Inventory>) -> Json<Vec<Product>> {
    Json(
        app.stock
            .lock()
            .expect("stock lock")
            .products
            .values()
            .cloned()
            .collect(),
    )
}

async fn product(
    State(app): State<Inventory>,
    Path(sku): Path<String>,
) -> Result<Json<Product>, ApiError> {
    app.stock
        .lock()
        .expect("stock lock")
        .products
        .get(&sku)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no product {sku}")))
}

async fn reserve(
    State(app): State<Inventory>,
    Json(request): Json<ReservationRequest>,
) -> Result<(StatusCode, Json<Reservation>), ApiError> {
    if request.quantity == 0 {
        return Err(ApiError::bad_request("quantity must be at least 1"));
    }
    // Check and decrement under one lock: two requests can never both take the last unit.
    let reservation = {
        let mut stock = app.stock.lock().expect("stock lock");
        let Some(product) = stock.products.get_mut(&request.sku) else {
            return Err(ApiError::not_found(format!("no product {}", request.sku)));
        };
        if product.available < request.quantity {
            let available = product.available;
            drop(stock);
            app.reservations
                .get_or_create(&Outcome {
                    outcome: "insufficient",
                })
                .inc();
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                format!(
                    "only {available} of {} available, {} requested",
                    request.sku, request.quantity
                ),
            )
            .with("sku", request.sku)
            .with("available", available)
            .with("requested", request.quantity));
        }
        product.available -= request.quantity;
        let unit_price_cents = product.price_cents;
        stock.next_id += 1;
        let reservation = Reservation {
            reservation_id: format!("r-{}", stock.next_id),
            sku: request.sku,
            quantity: request.quantity,
            unit_price_cents,
            status: ReservationStatus::Held,
        };
        stock
            .reservations
            .insert(reservation.reservation_id.clone(), reservation.clone());
        reservation
    };
    app.reservations
        .get_or_create(&Outcome {
            outcome: "reserved",
        })
        .inc();
    tracing::info!(reservation_id = %reservation.reservation_id, sku = %reservation.sku, quantity = reservation.quantity, "stock reserved");
    Ok((StatusCode::CREATED, Json(reservation)))
}

async fn release(
    State(app): State<Inventory>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let released = {
        let mut stock = app.stock.lock().expect("stock lock");
        match stock.reservations.get(&id).map(|r| r.status) {
            None => return Err(ApiError::not_found(format!("no reservation {id}"))),
            Some(ReservationStatus::Committed) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("reservation {id} is committed: sold stock is not released"),
                ));
            }
            Some(ReservationStatus::Held) => {}
        }
        let reservation = stock.reservations.remove(&id).expect("checked above");
        if let Some(product) = stock.products.get_mut(&reservation.sku) {
            product.available += reservation.quantity;
        }
        reservation
    };
    app.reservations
        .get_or_create(&Outcome {
            outcome: "released",
        })
        .inc();
    tracing::info!(reservation_id = %id, sku = %released.sku, quantity = released.quantity, "reservation released");
    Ok(Json(json!({"reservationId": id, "status": "released"})))
}

async fn commit(
    State(app): State<Inventory>,
    Path(id): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    // Committing twice is harmless: a retried commit must not fail the order.
    app.commit_reservation(&id)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no reservation {id}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::call;

    fn one_product(available: u32) -> Router {
        routes(vec![Product {
            sku: "mug".into(),
            name: "Mug".into(),
            price_cents: 1000,
            available,
            stock: available,
        }])
    }

    async fn available(app: &Router) -> u64 {
        mug(app).await["available"].as_u64().unwrap()
    }

    async fn stock(app: &Router) -> u64 {
        mug(app).await["stock"].as_u64().unwrap()
    }

    async fn mug(app: &Router) -> serde_json::Value {
        let (status, product) = call(app, "GET", "/products/mug", None).await;
        assert_eq!(status, StatusCode::OK);
        product
    }

    #[tokio::test]
    async fn lists_the_seeded_catalogue() {
        let app = routes(seed());
        let (status, products) = call(&app, "GET", "/products", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(products.as_array().unwrap().len(), 5);
        let (status, _) = call(&app, "GET", "/products/none", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test]
    async fn reserve_commit_and_release() {
        let app = one_product(5);
        let reserve = json!({"sku": "mug", "quantity": 2});
        let (status, first) = call(&app, "POST", "/reservations", Some(reserve.clone())).await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(first["unitPriceCents"], 1000);
        let (_, second) = call(&app, "POST", "/reservations", Some(reserve)).await;
        assert_eq!(available(&app).await, 1);
        assert_eq!(
            stock(&app).await,
            5,
            "reserved units are still on the shelf"
        );

        let (status, body) = call(
            &app,
            "POST",
            "/reservations",
            Some(json!({"sku": "mug", "quantity": 2})),
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(body["available"], 1);

        let first_id = first["reservationId"].as_str().unwrap();
        let (status, _) = call(
            &app,
            "POST",
            &format!("/reservations/{first_id}/commit"),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(stock(&app).await, 3, "sold units leave the shelf");
        let again = format!("/reservations/{first_id}/commit");
        assert_eq!(call(&app, "POST", &again, None).await.0, StatusCode::OK);
        assert_eq!(stock(&app).await, 3, "a second commit sells nothing more");
        let (status, _) = call(&app, "DELETE", &format!("/reservations/{first_id}"), None).await;
        assert_eq!(status, StatusCode::CONFLICT, "committed stock stays sold");

        let second_id = second["reservationId"].as_str().unwrap();
        let (status, body) =
            call(&app, "DELETE", &format!("/reservations/{second_id}"), None).await;
        assert_eq!(
            (status, body["status"].as_str()),
            (StatusCode::OK, Some("released"))
        );
        assert_eq!(available(&app).await, 3);
        assert_eq!(stock(&app).await, 3);
        let (status, _) = call(&app, "DELETE", &format!("/reservations/{second_id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "released once only");
    }

    #[tokio::test]
    async fn order_placed_commits_its_reservations_once() {
        let inventory = Inventory::new(vec![Product {
            sku: "mug".into(),
            name: "Mug".into(),
            price_cents: 1000,
            available: 5,
            stock: 5,
        }]);
        let app = inventory.router();
        let reserve = Some(json!({"sku": "mug", "quantity": 2}));
        let (_, reservation) = call(&app, "POST", "/reservations", reserve).await;
        let event = json!({"orderId": "o-1", "userId": "u-1",
            "items": [{"sku": "mug", "quantity": 2}],
            "reservations": [reservation["reservationId"]],
            "placedAt": "2026-01-02T03:04:05.006Z"})
        .to_string();
        assert_eq!(inventory.on_order_placed(event.as_bytes()), "committed");
        assert_eq!((available(&app).await, stock(&app).await), (3, 3));
        // Delivered twice (a retry, a second subscriber): nothing more is sold.
        assert_eq!(inventory.on_order_placed(event.as_bytes()), "committed");
        assert_eq!(stock(&app).await, 3);

        let unknown = event.replace(reservation["reservationId"].as_str().unwrap(), "r-404");
        assert_eq!(inventory.on_order_placed(unknown.as_bytes()), "unknown");
        assert_eq!(inventory.on_order_placed(b"{not json"), "invalid");
        assert_eq!(stock(&app).await, 3);
        let consumed = inventory
            .consumed
            .get_or_create(&EventLabels {
                subject: ORDER_PLACED,
                outcome: "committed",
            })
            .get();
        assert_eq!(consumed, 2);
    }

    #[tokio::test]
    async fn bad_reservations_are_refused() {
        let app = one_product(5);
        let (status, _) = call(
            &app,
            "POST",
            "/reservations",
            Some(json!({"sku": "mug", "quantity": 0})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            "POST",
            "/reservations",
            Some(json!({"sku": "cup", "quantity": 1})),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = call(&app, "POST", "/reservations/r-404/commit", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_reservations_never_oversell() {
        const STOCK: u32 = 40;
        let app = one_product(STOCK);
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let app = app.clone();
                tokio::spawn(async move {
                    let quantity = 1 + i % 3;
                    let (status, body) = call(
                        &app,
                        "POST",
                        "/reservations",
                        Some(json!({"sku": "mug", "quantity": quantity})),
                    )
                    .await;
                    (status, quantity, body)
                })
            })
            .collect();
        let mut reserved = 0;
        let mut ids = Vec::new();
        for task in futures::future::join_all(tasks).await {
            let (status, quantity, body) = task.unwrap();
            match status {
                StatusCode::CREATED => {
                    reserved += quantity;
                    ids.push(body["reservationId"].as_str().unwrap().to_string());
                }
                StatusCode::CONFLICT => {}
                other => panic!("unexpected {other}: {body}"),
            }
        }
        let left = available(&app).await as u32;
        assert_eq!(reserved + left, STOCK, "reserved {reserved}, left {left}");
        assert!(left < 3, "stock should be nearly exhausted, {left} left");

        // Releasing everything concurrently puts every unit back exactly once.
        let releases: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let app = app.clone();
                tokio::spawn(async move {
                    call(&app, "DELETE", &format!("/reservations/{id}"), None)
                        .await
                        .0
                })
            })
            .collect();
        for status in futures::future::join_all(releases).await {
            assert_eq!(status.unwrap(), StatusCode::OK);
        }
        assert_eq!(available(&app).await as u32, STOCK);
    }
}
