//! `payments`: authorizes a payment by one deterministic rule: approved up to
//! `PAYMENTS_LIMIT_CENTS` (default 50000) per authorization, declined above it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};

use crate::server::Service;
use crate::{ApiError, ConfigError, env_parse};

pub const DEFAULT_LIMIT_CENTS: u64 = 50_000;

#[derive(Debug, Deserialize)]
pub struct AuthorizationRequest {
    #[serde(rename = "userId")]
    pub user_id: String,
    #[serde(alias = "amountCents")]
    pub amount_cents: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Authorization {
    pub authorization_id: String,
    pub user_id: String,
    pub amount_cents: u64,
    pub status: Decision,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Approved,
    Declined,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DecisionLabel {
    decision: &'static str,
}

#[derive(Clone)]
struct AppState {
    limit_cents: u64,
    next_id: Arc<AtomicU64>,
    decisions: Family<DecisionLabel, Counter>,
}

/// The service's routes, approving up to `limit_cents`.
pub fn routes(limit_cents: u64) -> Router {
    routes_with(limit_cents, Family::default())
}

fn routes_with(limit_cents: u64, decisions: Family<DecisionLabel, Counter>) -> Router {
    Router::new()
        .route("/authorizations", post(authorize))
        .with_state(AppState {
            limit_cents,
            next_id: Arc::default(),
            decisions,
        })
}

/// `main` of the `payments` binary: the limit from `PAYMENTS_LIMIT_CENTS`.
pub fn build(service: &mut Service) -> Result<Router, ConfigError> {
    let limit_cents = env_parse("PAYMENTS_LIMIT_CENTS", DEFAULT_LIMIT_CENTS)?;
    let decisions = Family::<DecisionLabel, Counter>::default();
    service.registry().register(
        "payments_authorizations",
        "Authorizations by decision",
        decisions.clone(),
    );
    tracing::info!(limit_cents, "payments limit");
    Ok(routes_with(limit_cents, decisions))
}

/// Always 200 with the decision in `status`: a decline is an answer, not an error.
async fn authorize(
    State(app): State<AppState>,
    Json(request): Json<AuthorizationRequest>,
) -> Result<Json<Authorization>, ApiError> {
    if request.user_id.trim().is_empty() {
        return Err(ApiError::bad_request("userId must not be empty"));
    }
    if request.amount_cents == 0 {
        return Err(ApiError::bad_request("amount_cents must be at least 1"));
    }
    let (status, reason) = if request.amount_cents > app.limit_cents {
        (
            Decision::Declined,
            Some(format!(
                "amount {} exceeds the limit of {} cents",
                request.amount_cents, app.limit_cents
            )),
        )
    } else {
        (Decision::Approved, None)
    };
    let id = app.next_id.fetch_add(1, Ordering::Relaxed) + 1;
    let authorization = Authorization {
        authorization_id: format!("a-{id}"),
        user_id: request.user_id,
        amount_cents: request.amount_cents,
        status,
        reason,
    };
    let decision = match status {
        Decision::Approved => "approved",
        Decision::Declined => "declined",
    };
    app.decisions
        .get_or_create(&DecisionLabel { decision })
        .inc();
    tracing::info!(authorization_id = %authorization.authorization_id, user_id = %authorization.user_id, amount_cents = authorization.amount_cents, decision, "payment authorization");
    Ok(Json(authorization))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::json;

    use super::*;
    use crate::testing::call;

    #[tokio::test]
    async fn approves_up_to_the_limit_and_declines_above() {
        let app = routes(1000);
        let (status, at_limit) = call(
            &app,
            "POST",
            "/authorizations",
            Some(json!({"userId": "u-1", "amount_cents": 1000})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(at_limit["status"], "approved");
        let (status, over) = call(
            &app,
            "POST",
            "/authorizations",
            Some(json!({"userId": "u-1", "amountCents": 1001})),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(over["status"], "declined");
        assert!(over["reason"].as_str().unwrap().contains("limit of 1000"));
        assert_ne!(at_limit["authorizationId"], over["authorizationId"]);
    }

    #[tokio::test]
    async fn refuses_empty_users_and_zero_amounts() {
        let app = routes(DEFAULT_LIMIT_CENTS);
        let (status, _) = call(
            &app,
            "POST",
            "/authorizations",
            Some(json!({"userId": "", "amount_cents": 5})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            "POST",
            "/authorizations",
            Some(json!({"userId": "u-1", "amount_cents": 0})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }
}
