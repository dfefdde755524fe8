//! `users`: registers customers and looks them up. State lives in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::server::Service;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
}

#[derive(Debug, Deserialize)]
pub struct NewUser {
    pub name: String,
    pub email: String,
}

#[derive(Default)]
struct Directory {
    next_id: u64,
    by_id: HashMap<String, User>,
}

type Shared = Arc<Mutex<Directory>>;

/// The service's routes: `POST /users`, `GET /users/{id}`.
pub fn routes() -> Router {
    Router::new()
        .route("/users", post(create))
        .route("/users/{id}", get(find))
        .with_state(Shared::default())
}

/// `main` of the `users` binary: no dependencies, no settings beyond the common ones.
pub fn build(_service: &mut Service) -> Result<Router, crate::ConfigError> {
    Ok(routes())
}

async fn create(
    State(directory): State<Shared>,
    Json(new): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), ApiError> {
    let name = new.name.trim();
    let email = new.email.trim();
    if name.is_empty() {
        return Err(ApiError::bad_request("name must not be empty"));
    }
    // A light check: enough to catch a swapped field, not an RFC 5322 parser.
    if !email.contains('@') || email.starts_with('@') || email.ends_with('@') {
        return Err(ApiError::bad_request(format!(
            "{email:?} is not an email address"
        )));
    }
    let user = {
        let mut directory = directory.lock().expect("users lock");
        directory.next_id += 1;
        let user = User {
            id: format!("u-{}", directory.next_id),
            name: name.to_string(),
            email: email.to_string(),
        };
        directory.by_id.insert(user.id.clone(), user.clone());
        user
    };
    tracing::info!(user_id = %user.id, "user registered");
    Ok((StatusCode::CREATED, Json(user)))
}

async fn find(
    State(directory): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<User>, ApiError> {
    directory
        .lock()
        .expect("users lock")
        .by_id
        .get(&id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no user {id}")))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::testing::call;

    #[tokio::test]
    async fn registers_then_finds_a_user() {
        let app = routes();
        let (status, created) = call(
            &app,
            "POST",
            "/users",
            Some(json!({"name": "Ada", "email": "ada@example.com"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(created["id"], "u-1");
        let (status, found) = call(&app, "GET", "/users/u-1", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            found,
            json!({"id": "u-1", "name": "Ada", "email": "ada@example.com"})
        );
    }

    #[tokio::test]
    async fn unknown_users_are_404_and_bad_input_400() {
        let app = routes();
        let (status, body) = call(&app, "GET", "/users/u-9", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["error"], "no user u-9");
        let (status, _) = call(
            &app,
            "POST",
            "/users",
            Some(json!({"name": " ", "email": "a@b"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (status, _) = call(
            &app,
            "POST",
            "/users",
            Some(json!({"name": "Ada", "email": "ada.example.com"})),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // Missing fields are refused by the JSON extractor.
        let (status, _) = call(&app, "POST", "/users", Some(json!({"name": "Ada"}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    }
}
