//! `inventory`: the product catalogue and its stock. Orders reserve stock, then commit
//! the reservation (sold) or release it (back on the shelf). State lives in memory,
//! behind one mutex, so concurrent reservations can never oversell.

use std::collections::{BTreeMap, HashMap};
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

use crate::ApiError;
use crate::server::Service;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub sku: String,
    pub name: String,
    pub price_cents: u64,
    /// Units neither reserved nor sold.
    pub available: u32,
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

#[derive(Clone)]
struct AppState {
    stock: Arc<Mutex<Stock>>,
    reservations: Family<Outcome, Counter>,
}

/// The service's routes over `catalogue`.
pub fn routes(catalogue: Vec<Product>) -> Router {
    routes_with(catalogue, Family::default())
}

fn routes_with(catalogue: Vec<Product>, reservations: Family<Outcome, Counter>) -> Router {
    let stock = Stock {
        products: catalogue.into_iter().map(|p| (p.sku.clone(), p)).collect(),
        ..Stock::default()
    };
    Router::new()
        .route("/products", get(list))
        .route("/products/{sku}", get(product))
        .route("/reservations", post(reserve))
        .route("/reservations/{id}", delete(release))
        .route("/reservations/{id}/commit", post(commit))
        .with_state(AppState {
            stock: Arc::new(Mutex::new(stock)),
            reservations,
        })
}

/// `main` of the `inventory` binary: the seeded catalogue.
pub fn build(service: &mut Service) -> Result<Router, crate::ConfigError> {
    let reservations = Family::<Outcome, Counter>::default();
    service.registry().register(
        "inventory_reservations",
        "Reservation requests by outcome (reserved, insufficient, committed, released)",
        reservations.clone(),
    );
    Ok(routes_with(seed(), reservations))
}

async fn list(State(app): State<AppState>) -> Json<Vec<Product>> {
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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
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
    State(app): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Reservation>, ApiError> {
    let reservation = {
        let mut stock = app.stock.lock().expect("stock lock");
        let Some(reservation) = stock.reservations.get_mut(&id) else {
            return Err(ApiError::not_found(format!("no reservation {id}")));
        };
        // Committing twice is harmless: a retried commit must not fail the order.
        reservation.status = ReservationStatus::Committed;
        reservation.clone()
    };
    app.reservations
        .get_or_create(&Outcome {
            outcome: "committed",
        })
        .inc();
    tracing::info!(reservation_id = %id, "reservation committed");
    Ok(Json(reservation))
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
        }])
    }

    async fn available(app: &Router) -> u64 {
        let (status, product) = call(app, "GET", "/products/mug", None).await;
        assert_eq!(status, StatusCode::OK);
        product["available"].as_u64().unwrap()
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
        let (status, _) = call(&app, "DELETE", &format!("/reservations/{second_id}"), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "released once only");
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
