//! How the Redis store reaches Redis in each `session.redis_mode`: one server (a connection that
//! remakes itself), a Redis Cluster (the crate's cluster connection, which follows slots and
//! failovers), or the primary Sentinel names (asked again after every failed command, so a failover
//! is followed without a restart). The store's commands are the same in every mode.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelServerType};
use redis::{Cmd, Pipeline, PushKind, RedisFuture, Value};
use tokio::sync::OnceCell;

use super::StoreError;
use crate::config::{RedisMode, SessionConfig};

pub(super) fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

/// No Redis call may hold a request longer than this, whatever Redis does.
const OPERATION_TIMEOUT: Duration = Duration::from_millis(1500);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) enum Link {
    Standalone {
        client: redis::Client,
        manager: OnceCell<ConnectionManager>,
    },
    Cluster {
        urls: Vec<String>,
        client: ClusterClient,
        connection: OnceCell<ClusterConnection>,
    },
    Sentinel {
        sentinel: tokio::sync::Mutex<SentinelClient>,
        primary: std::sync::Mutex<Option<MultiplexedConnection>>,
    },
}

/// One connection of any mode, used the same way by every store command.
#[derive(Clone)]
pub(crate) enum Connection {
    Single(ConnectionManager),
    Multiplexed(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Multiplexed(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Multiplexed(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Multiplexed(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A revocation channel's message, as published by the store's scripts.
pub(super) type Messages = std::pin::Pin<Box<dyn Stream<Item = String> + Send>>;

impl Link {
    /// Checks the addresses only; nothing connects until first use, so the gateway starts (and
    /// answers `/ready` with 503) while Redis is down.
    pub(crate) fn new(config: &SessionConfig) -> Result<Link, String> {
        match config.redis_mode {
            RedisMode::Standalone => Ok(Link::Standalone {
                client: redis::Client::open(config.redis_url.as_str())
                    .map_err(|e| format!("session.redis_url: {e}"))?,
                manager: OnceCell::new(),
            }),
            RedisMode::Cluster => Ok(Link::Cluster {
                client: cluster_client(&config.redis_urls, None)?,
                urls: config.redis_urls.clone(),
                connection: OnceCell::new(),
            }),
            RedisMode::Sentinel => Ok(Link::Sentinel {
                sentinel: tokio::sync::Mutex::new(
                    SentinelClient::build(
                        config.redis_urls.clone(),
                        config.sentinel_master.clone(),
                        None,
                        SentinelServerType::Master,
                    )
                    .map_err(|e| format!("session.redis_urls: {e}"))?,
                ),
                primary: std::sync::Mutex::new(None),
            }),
        }
    }

    /// Sharded pub/sub (one channel per bucket, `SPUBLISH`) on a cluster, so a revocation costs
    /// one shard, not every node; plain pub/sub on one server.
    pub(super) fn sharded(&self) -> bool {
        matches!(self, Link::Cluster { .. })
    }

    pub(crate) async fn connection(&self) -> Result<Connection, StoreError> {
        match self {
            Link::Standalone { client, manager } => {
                let manager = manager
                    .get_or_try_init(|| async {
                        let config = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(CONNECT_TIMEOUT))
                            .set_response_timeout(Some(RESPONSE_TIMEOUT))
                            .set_number_of_retries(1)
                            .set_max_delay(Duration::from_millis(500));
                        ConnectionManager::new_lazy_with_config(client.clone(), config)
                            .map_err(unavailable)
                    })
                    .await?;
                Ok(Connection::Single(manager.clone()))
            }
            Link::Cluster {
                client, connection, ..
            } => {
                let connection = connection
                    .get_or_try_init(|| async {
                        client.get_async_connection().await.map_err(unavailable)
                    })
                    .await?;
                Ok(Connection::Cluster(connection.clone()))
            }
            Link::Sentinel { sentinel, primary } => {
                if let Some(connection) = lock(primary).clone() {
                    return Ok(Connection::Multiplexed(connection));
                }
                let connection = primary_client(sentinel)
                    .await?
                    .get_multiplexed_async_connection_with_config(
                        &redis::AsyncConnectionConfig::new()
                            .set_connection_timeout(Some(CONNECT_TIMEOUT))
                            .set_response_timeout(Some(RESPONSE_TIMEOUT)),
                    )
                    .await
                    .map_err(unavailable)?;
                *lock(primary) = Some(connection.clone());
                Ok(Connection::Multiplexed(connection))
            }
        }
    }

    /// Runs one Redis operation under [`OPERATION_TIMEOUT`]; a failure makes the next one look
    /// for the primary again (Sentinel).
    pub(crate) async fn bounded<T>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let result = tokio::time::timeout(OPERATION_TIMEOUT, work)
            .await
            .unwrap_or_else(|_| {
                Err(StoreError::Unavailable(format!(
                    "no answer within {OPERATION_TIMEOUT:?}"
                )))
            });
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.failed();
        }
        result
    }

    /// After a failed command: with Sentinel, the primary may have moved (or been demoted, which
    /// refuses writes), so the next command asks Sentinel again. The other modes remake their
    /// connections themselves.
    fn failed(&self) {
        if let Link::Sentinel { primary, .. } = self {
            *lock(primary) = None;
        }
    }

    /// Subscribes to `channels` on a fresh connection. The stream ends when any connection under
    /// it is lost or a shard drops the subscription (a slot moved), so the caller never believes
    /// it hears what it may have missed.
    pub(super) async fn subscribe(&self, channels: Vec<String>) -> Result<Messages, StoreError> {
        match self {
            Link::Standalone { client, .. } => plain_subscribe(client, &channels).await,
            Link::Sentinel { sentinel, .. } => {
                plain_subscribe(&primary_client(sentinel).await?, &channels).await
            }
            Link::Cluster { urls, .. } => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                let client = cluster_client(urls, Some(tx)).map_err(StoreError::Unavailable)?;
                let connection = client.get_async_connection().await.map_err(unavailable)?;
                let subscribed = futures_util::stream::iter(channels)
                    .map(|channel| {
                        let mut connection = connection.clone();
                        async move { connection.ssubscribe(channel).await }
                    })
                    .buffer_unordered(64)
                    .collect::<Vec<_>>()
                    .await;
                if let Some(Err(e)) = subscribed.into_iter().find(Result::is_err) {
                    return Err(unavailable(e));
                }
                // The connection rides along with the stream: dropping it would end the
                // subscriptions.
                let messages = futures_util::stream::unfold(
                    (rx, connection),
                    |(mut rx, connection)| async move {
                        let heard = match rx.recv().await {
                            None => Heard::Lost,
                            Some(push) => heard(push),
                        };
                        Some((heard, (rx, connection)))
                    },
                );
                Ok(until_lost(messages))
            }
        }
    }
}

enum Heard {
    Message(String),
    Other,
    Lost,
}

fn heard(push: redis::PushInfo) -> Heard {
    match push.kind {
        PushKind::SMessage => match push.data.get(1) {
            Some(Value::BulkString(payload)) => {
                Heard::Message(String::from_utf8_lossy(payload).into_owned())
            }
            _ => Heard::Other,
        },
        PushKind::Disconnection | PushKind::SUnsubscribe => Heard::Lost,
        _ => Heard::Other,
    }
}

/// The messages heard until the subscription is reported lost.
fn until_lost(heard: impl Stream<Item = Heard> + Send + 'static) -> Messages {
    Box::pin(
        heard
            .take_while(|heard| std::future::ready(!matches!(heard, Heard::Lost)))
            .filter_map(|heard| {
                std::future::ready(match heard {
                    Heard::Message(payload) => Some(payload),
                    _ => None,
                })
            }),
    )
}

/// The primary Sentinel names now.
async fn primary_client(
    sentinel: &tokio::sync::Mutex<SentinelClient>,
) -> Result<redis::Client, StoreError> {
    sentinel
        .lock()
        .await
        .async_get_client()
        .await
        .map_err(unavailable)
}

async fn plain_subscribe(
    client: &redis::Client,
    channels: &[String],
) -> Result<Messages, StoreError> {
    let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub.subscribe(channels).await.map_err(unavailable)?;
    Ok(Box::pin(pubsub.into_on_message().filter_map(
        |msg| async move { msg.get_payload::<String>().ok() },
    )))
}

fn cluster_client(
    urls: &[String],
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> Result<ClusterClient, String> {
    let mut builder = redis::cluster::ClusterClientBuilder::new(urls.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .response_timeout(RESPONSE_TIMEOUT)
        .retries(2);
    if let Some(push) = push {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(push);
    }
    builder
        .build()
        .map_err(|e| format!("session.redis_urls: {e}"))
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
