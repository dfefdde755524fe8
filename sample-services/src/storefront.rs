//! `storefront`: the shop's edge. `GET /` is a small HTML page listing the products with
//! a form that places an order; `/api/*` is the JSON API behind it, forwarding to
//! inventory, users and orders. The greeting comes from `STOREFRONT_BANNER`.

use std::fmt::Write as _;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};

use crate::client::{Reply, UpstreamError};
use crate::inventory::Product;
use crate::server::Service;
use crate::{ConfigError, Upstream, env_or};

pub const DEFAULT_BANNER: &str = "Welcome to the Flotilla shop";

#[derive(Clone)]
pub struct Dependencies {
    pub users: Upstream,
    pub inventory: Upstream,
    pub orders: Upstream,
}

impl Dependencies {
    /// From `USERS_URL`, `INVENTORY_URL` and `ORDERS_URL`; every missing one is named.
    pub fn from_env() -> Result<Self, ConfigError> {
        let users = Upstream::from_env("storefront", "users");
        let inventory = Upstream::from_env("storefront", "inventory");
        let orders = Upstream::from_env("storefront", "orders");
        match (users, inventory, orders) {
            (Ok(users), Ok(inventory), Ok(orders)) => Ok(Self {
                users,
                inventory,
                orders,
            }),
            (u, i, o) => Err(ConfigError(
                [u.err(), i.err(), o.err()]
                    .into_iter()
                    .flatten()
                    .map(|e| e.0)
                    .collect::<Vec<_>>()
                    .join("; "),
            )),
        }
    }
}

#[derive(Clone)]
struct AppState {
    deps: Dependencies,
    banner: String,
}

pub fn routes(deps: Dependencies, banner: String) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/api/products", get(products))
        .route("/api/users", post(create_user))
        .route("/api/orders", get(list_orders).post(place_order))
        .route("/api/orders/{id}", get(find_order))
        .with_state(AppState { deps, banner })
}

/// `main` of the `storefront` binary.
pub fn build(_service: &mut Service) -> Result<Router, ConfigError> {
    let deps = Dependencies::from_env()?;
    let banner = env_or("STOREFRONT_BANNER", DEFAULT_BANNER);
    tracing::info!(
        banner = %banner,
        users = deps.users.base_url(),
        inventory = deps.inventory.base_url(),
        orders = deps.orders.base_url(),
        "configuration"
    );
    Ok(routes(deps, banner))
}

/// The dependency's answer as ours: same status, same JSON body.
fn relay(result: Result<Reply, UpstreamError>) -> Response {
    match result {
        Ok(reply) => (
            reply.status,
            [(header::CONTENT_TYPE, "application/json")],
            reply.body,
        )
            .into_response(),
        Err(e) => crate::ApiError::bad_gateway(e.to_string()).into_response(),
    }
}

async fn products(State(app): State<AppState>) -> Response {
    relay(app.deps.inventory.get("/products").await)
}

async fn create_user(State(app): State<AppState>, body: Bytes) -> Response {
    relay(app.deps.users.post_raw("/users", body).await)
}

async fn place_order(State(app): State<AppState>, body: Bytes) -> Response {
    relay(app.deps.orders.post_raw("/orders", body).await)
}

async fn list_orders(State(app): State<AppState>) -> Response {
    relay(app.deps.orders.get("/orders").await)
}

async fn find_order(State(app): State<AppState>, Path(id): Path<String>) -> Response {
    // Order ids are `o-<n>`: anything else could change the path upstream.
    if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return crate::ApiError::not_found(format!("no order {id}")).into_response();
    }
    relay(app.deps.orders.get(&format!("/orders/{id}")).await)
}

async fn page(State(app): State<AppState>) -> (StatusCode, Html<String>) {
    // The page renders even when inventory is down: it says so instead of the catalogue.
    let catalogue = match app.deps.inventory.get("/products").await {
        Ok(reply) if reply.status == StatusCode::OK => reply
            .json::<Vec<Product>>(&app.deps.inventory)
            .map_err(|e| e.to_string()),
        Ok(reply) => Err(format!("inventory answered HTTP {}", reply.status)),
        Err(e) => Err(e.to_string()),
    };
    (StatusCode::OK, Html(render(&app.banner, &catalogue)))
}

fn render(banner: &str, catalogue: &Result<Vec<Product>, String>) -> String {
    let mut rows = String::new();
    let mut options = String::new();
    match catalogue {
        Ok(products) => {
            for p in products {
                let _ = write!(
                    rows,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}.{:02}</td><td>{}</td></tr>",
                    escape(&p.name),
                    escape(&p.sku),
                    p.price_cents / 100,
                    p.price_cents % 100,
                    p.available
                );
                let _ = write!(
                    options,
                    "<option value=\"{0}\">{1}</option>",
                    escape(&p.sku),
                    escape(&p.name)
                );
            }
        }
        Err(e) => {
            let _ = write!(
                rows,
                "<tr><td colspan=\"4\">The catalogue is unavailable: {}</td></tr>",
                escape(e)
            );
        }
    }
    PAGE.replace("{banner}", &escape(banner))
        .replace("{rows}", &rows)
        .replace("{options}", &options)
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Flotilla shop</title>
<style>body{font-family:sans-serif;max-width:44rem;margin:2rem auto}table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left}form{margin-top:1.5rem;display:grid;gap:.5rem;max-width:24rem}pre{background:#f4f4f4;padding:.5rem;white-space:pre-wrap}</style>
</head>
<body>
<h1>{banner}</h1>
<table><thead><tr><th>Product</th><th>SKU</th><th>Price</th><th>In stock</th></tr></thead>
<tbody>{rows}</tbody></table>
<form id="order">
<input name="name" placeholder="Your name" required>
<input name="email" type="email" placeholder="you@example.com" required>
<select name="sku">{options}</select>
<input name="quantity" type="number" min="1" value="1" required>
<button>Place order</button>
</form>
<pre id="result"></pre>
<script>
document.getElementById("order").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const out = document.getElementById("result");
  const post = (path, body) => fetch(path, {method: "POST", headers: {"content-type": "application/json"}, body: JSON.stringify(body)})
    .then(async (r) => ({status: r.status, body: await r.json()}));
  const user = await post("/api/users", {name: form.get("name"), email: form.get("email")});
  if (user.status !== 201) { out.textContent = "Registration failed: " + JSON.stringify(user.body, null, 2); return; }
  const order = await post("/api/orders", {userId: user.body.id, items: [{sku: form.get("sku"), quantity: Number(form.get("quantity"))}]});
  out.textContent = "HTTP " + order.status + "\n" + JSON.stringify(order.body, null, 2);
});
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::events::Publisher;
    use crate::orders::store::MemoryStore;
    use crate::testing::{call, call_text};
    use crate::{inventory, orders, payments, users};

    fn storefront(banner: &str, inventory_router: Router) -> Router {
        let users = users::routes();
        let orders = orders::routes(
            orders::Dependencies {
                users: Upstream::in_process("users", users.clone()),
                inventory: Upstream::in_process("inventory", inventory_router.clone()),
                payments: Upstream::in_process(
                    "payments",
                    payments::routes(payments::DEFAULT_LIMIT_CENTS),
                ),
            },
            MemoryStore::default(),
            // Events go nowhere here: inventory's side is tested in inventory and orders.
            Publisher::in_process(|_, _| Ok(())),
        );
        routes(
            Dependencies {
                users: Upstream::in_process("users", users),
                inventory: Upstream::in_process("inventory", inventory_router),
                orders: Upstream::in_process("orders", orders),
            },
            banner.to_string(),
        )
    }

    #[tokio::test]
    async fn the_page_shows_the_banner_escaped_and_the_products() {
        let app = storefront("Spring <sale>", inventory::routes(inventory::seed()));
        let (status, html) = call_text(&app, "GET", "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(html.contains("<h1>Spring &lt;sale&gt;</h1>"), "{html}");
        assert!(
            html.contains("Stovetop kettle") && html.contains("39.00"),
            "{html}"
        );
        assert!(html.contains(r#"<option value="grinder-burr">"#), "{html}");
    }

    #[tokio::test]
    async fn the_api_registers_and_orders_through_the_other_services() {
        let app = storefront(DEFAULT_BANNER, inventory::routes(inventory::seed()));
        let (status, products) = call(&app, "GET", "/api/products", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(products.as_array().unwrap().len(), 5);
        let (status, user) = call(
            &app,
            "POST",
            "/api/users",
            Some(json!({"name": "Bo", "email": "bo@example.com"})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        let order = json!({"userId": user["id"], "items": [{"sku": "mug-enamel", "quantity": 1}]});
        let (status, placed) = call(&app, "POST", "/api/orders", Some(order)).await;
        assert_eq!(
            (status, placed["status"].as_str()),
            (StatusCode::CREATED, Some("confirmed")),
            "{placed}"
        );
        let (_, listed) = call(&app, "GET", "/api/orders", None).await;
        assert_eq!(listed.as_array().unwrap().len(), 1);
        let id = placed["orderId"].as_str().unwrap();
        let (status, found) = call(&app, "GET", &format!("/api/orders/{id}"), None).await;
        assert_eq!((status, &found), (StatusCode::OK, &placed));
        let (status, _) = call(&app, "GET", "/api/orders/o-1%2F..", None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, products) = call(&app, "GET", "/api/products", None).await;
        let mug = products
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["sku"] == "mug-enamel")
            .unwrap()
            .clone();
        assert_eq!(mug["available"], 39);
    }

    #[tokio::test]
    async fn a_broken_inventory_degrades_the_page_and_fails_the_api_with_502() {
        let broken = Router::new().route(
            "/products",
            get(|| async { StatusCode::SERVICE_UNAVAILABLE }),
        );
        let app = storefront(DEFAULT_BANNER, broken);
        let (status, html) = call_text(&app, "GET", "/", None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            html.contains("The catalogue is unavailable: inventory answered HTTP 503"),
            "{html}"
        );
        let (status, _) = call(&app, "GET", "/api/products", None).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "relayed as answered"
        );
    }
}
