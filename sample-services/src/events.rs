//! Events between the services over NATS, core publish/subscribe only: orders publishes
//! `order.placed` once an order is paid and stored, inventory consumes it and commits the
//! order's reservations.
//!
//! Core NATS delivers at most once: an event published while its subscriber is
//! disconnected is lost, not redelivered (sample-services/README.md says why that is
//! acceptable here). The broker's address is `EVENTS_URL`, which Flotilla injects for a
//! `spec.backingServices` entry named `events`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::connection::State;
use async_nats::{Client, ConnectOptions, ServerAddr};
use axum::body::Bytes;
use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

use crate::config::{ConfigError, env_opt};

/// The subject of a confirmed order: [`OrderPlaced`] as JSON.
pub const ORDER_PLACED: &str = "order.placed";

/// How long a publish may wait for the broker to acknowledge it (a flush round trip).
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// A product and how many of it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Item {
    pub sku: String,
    pub quantity: u32,
}

/// An order that is paid and stored: inventory commits its reservations.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OrderPlaced {
    pub order_id: String,
    pub user_id: String,
    pub items: Vec<Item>,
    /// The inventory reservations the order holds, one per item.
    pub reservations: Vec<String>,
    /// RFC 3339, UTC.
    pub placed_at: String,
}

/// Labels of the events counters: the subject and what became of the event.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    pub subject: &'static str,
    pub outcome: &'static str,
}

/// Events published or consumed, by subject and outcome.
pub type EventCounter = Family<EventLabels, Counter>;

/// The broker's URL from `EVENTS_URL`, or `EVENTS_HOST` and `EVENTS_PORT` (4222); a
/// missing or malformed one is an error naming what to set. `caller` names the service.
pub fn url_from_env(caller: &str) -> Result<String, ConfigError> {
    let url = match (env_opt("EVENTS_URL"), env_opt("EVENTS_HOST")) {
        (Some(url), _) => url,
        (None, Some(host)) => {
            let port = env_opt("EVENTS_PORT").unwrap_or_else(|| "4222".to_string());
            format!("nats://{host}:{port}")
        }
        (None, None) => {
            return Err(ConfigError(format!(
                "EVENTS_URL is not set: {caller} exchanges events through NATS. Under \
                 Flotilla, add `events: {{type: nats}}` to the Microservice's \
                 spec.backingServices; elsewhere, set it, e.g. \
                 EVENTS_URL=nats://127.0.0.1:4222"
            )));
        }
    };
    check_url(&url)
}

fn check_url(url: &str) -> Result<String, ConfigError> {
    // Plain nats:// only: the samples carry no TLS stack (tls:// would need one).
    if !url.starts_with("nats://") {
        return Err(ConfigError(format!(
            "EVENTS_URL={url:?} must be a nats:// URL (is the broker's port appProtocol nats?)"
        )));
    }
    url.parse::<ServerAddr>()
        .map_err(|e| ConfigError(format!("EVENTS_URL={url:?} is not valid: {e}")))?;
    Ok(url.to_string())
}

/// A NATS connection, made in the background: the service starts (and answers its
/// probes) before the broker does, and async-nats reconnects by itself, without limit,
/// after the broker restarts; subscriptions are renewed on the new connection.
#[derive(Clone)]
pub struct Broker {
    service: &'static str,
    url: String,
    client: Arc<OnceCell<Client>>,
}

impl Broker {
    /// A broker at `url` for `service` (the client name the broker shows); connects at
    /// once, in the background.
    pub fn start(service: &'static str, url: String) -> Self {
        let broker = Self::unconnected(service, url);
        let starting = broker.clone();
        tokio::spawn(async move {
            if let Err(e) = starting.client().await {
                tracing::error!(error = %e, url = %starting.url, "cannot set up the NATS client");
            }
        });
        broker
    }

    /// A broker that has not started connecting (for tests: never connected).
    pub fn unconnected(service: &'static str, url: String) -> Self {
        Self {
            service,
            url,
            client: Arc::default(),
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The client, once made. With `retry_on_initial_connect` making it does not wait for
    /// the broker: only a malformed address fails.
    async fn client(&self) -> Result<&Client, async_nats::ConnectError> {
        self.client
            .get_or_try_init(|| {
                // async-nats logs its connection events (connected, disconnected) itself.
                ConnectOptions::new()
                    .name(self.service)
                    .retry_on_initial_connect()
                    .connection_timeout(Duration::from_secs(2))
                    // A broker gone without closing the connection is noticed within
                    // two pings, not the default two minutes.
                    .ping_interval(Duration::from_secs(10))
                    .connect(self.url.as_str())
            })
            .await
    }

    /// `Ok` while connected to the broker, the state otherwise.
    pub fn connected(&self) -> Result<(), String> {
        match self.client.get().map(Client::connection_state) {
            Some(State::Connected) => Ok(()),
            Some(state) => Err(format!("NATS at {}: {state}", self.url)),
            None => Err(format!("NATS at {}: not connected yet", self.url)),
        }
    }
}

/// A consumer's handler called in the same process: (subject, payload) → delivered?
type Deliver = dyn Fn(&str, &[u8]) -> Result<(), String> + Send + Sync;

/// Where orders sends its events: the broker, or (in unit tests) a function in the same
/// process.
#[derive(Clone)]
pub enum Publisher {
    Nats(Broker),
    InProcess(Arc<Deliver>),
}

impl Publisher {
    /// A publisher that hands every event to `deliver` (a consumer's handler) directly.
    pub fn in_process(
        deliver: impl Fn(&str, &[u8]) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self::InProcess(Arc::new(deliver))
    }

    /// `Ok` when an event published now can reach the broker.
    pub fn ready(&self) -> Result<(), String> {
        match self {
            Self::Nats(broker) => broker.connected(),
            Self::InProcess(_) => Ok(()),
        }
    }

    /// Publishes `event` as JSON on `subject` and waits until the broker has it (a flush
    /// round trip): past that, delivery is the broker's, at most once.
    pub async fn publish(&self, subject: &str, event: &impl Serialize) -> Result<(), String> {
        let payload = serde_json::to_vec(event).map_err(|e| format!("encoding: {e}"))?;
        match self {
            Self::Nats(broker) => {
                let client = broker.client().await.map_err(|e| e.to_string())?;
                let sent = async {
                    client
                        .publish(subject.to_string(), Bytes::from(payload))
                        .await
                        .map_err(|e| format!("publishing to {}: {e}", broker.url))?;
                    client
                        .flush()
                        .await
                        .map_err(|e| format!("flushing to {}: {e}", broker.url))
                };
                tokio::time::timeout(PUBLISH_TIMEOUT, sent)
                    .await
                    .map_err(|_| {
                        format!(
                            "NATS at {} did not take the event within {PUBLISH_TIMEOUT:?}",
                            broker.url
                        )
                    })?
            }
            Self::InProcess(deliver) => deliver(subject, &payload),
        }
    }
}

/// Subscribes to `subject` for as long as the process runs and hands every message's
/// payload to `handle`, one at a time. The flag returned is true while the subscription
/// is in place (async-nats renews it across reconnects; it is made again if it ends).
pub fn consume(
    broker: Broker,
    subject: &'static str,
    handle: impl Fn(&[u8]) + Send + Sync + 'static,
) -> Arc<AtomicBool> {
    let subscribed = Arc::new(AtomicBool::new(false));
    let flag = subscribed.clone();
    tokio::spawn(async move {
        loop {
            let subscription = match broker.client().await {
                Ok(client) => client.subscribe(subject).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match subscription {
                Ok(mut messages) => {
                    flag.store(true, Ordering::SeqCst);
                    tracing::info!(subject, url = %broker.url, "subscribed");
                    while let Some(message) = messages.next().await {
                        handle(&message.payload);
                    }
                    flag.store(false, Ordering::SeqCst);
                    tracing::warn!(subject, "subscription ended; subscribing again");
                }
                Err(e) => tracing::warn!(subject, error = %e, "cannot subscribe"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    subscribed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_urls_are_nats_urls() {
        assert_eq!(
            check_url("nats://nats.shop.svc.cluster.local:4222"),
            Ok("nats://nats.shop.svc.cluster.local:4222".to_string())
        );
        assert!(check_url("http://nats:4222").is_err());
        assert!(check_url("tls://nats:4222").is_err());
    }

    #[test]
    fn order_placed_is_camel_case_json() {
        let event = OrderPlaced {
            order_id: "o-7".into(),
            user_id: "u-1".into(),
            items: vec![Item {
                sku: "mug-enamel".into(),
                quantity: 2,
            }],
            reservations: vec!["r-3".into()],
            placed_at: "2026-01-02T03:04:05.006Z".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"orderId": "o-7", "userId": "u-1",
                "items": [{"sku": "mug-enamel", "quantity": 2}],
                "reservations": ["r-3"], "placedAt": "2026-01-02T03:04:05.006Z"})
        );
    }

    #[tokio::test]
    async fn a_broker_not_yet_connected_is_not_ready() {
        let broker = Broker::unconnected("test", "nats://127.0.0.1:1".into());
        let err = Publisher::Nats(broker).ready().unwrap_err();
        assert!(err.contains("not connected yet"), "{err}");
    }
}
