//! Event fan-out: live streams to subscribers (GraphQL subscriptions).
//! Delivery is best-effort and at-most-once, like Redis pub/sub: anything
//! that must not be lost is also stored (audit rows, job events) and can be
//! re-read; a subscriber that falls behind skips ahead rather than blocking
//! the publisher.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::sync::broadcast;

use crate::{RedisBroker, Result};

#[async_trait]
pub trait EventBus: Send + Sync + 'static {
    async fn publish(&self, topic: &str, payload: String) -> Result<()>;
    /// Messages published on `topic` from now on.
    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, String>>;
}

/// In-process fan-out over broadcast channels, one per topic.
#[derive(Default)]
pub struct MemoryEventBus {
    topics: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

/// Messages a slow subscriber may lag behind before it skips ahead.
const CHANNEL_CAPACITY: usize = 256;

impl MemoryEventBus {
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EventBus for MemoryEventBus {
    async fn publish(&self, topic: &str, payload: String) -> Result<()> {
        let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
        // No subscriber left: forget the topic so memory stays bounded.
        if let Some(sender) = topics.get(topic)
            && sender.send(payload).is_err()
        {
            topics.remove(topic);
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, String>> {
        let receiver = {
            let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            topics.entry(topic.to_owned()).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0).subscribe()
        };
        let stream = futures::stream::unfold(receiver, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(message) => return Some((message, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok(stream.boxed())
    }
}

/// Fan-out across replicas with Redis pub/sub.
pub struct RedisEventBus {
    broker: RedisBroker,
}

impl RedisEventBus {
    pub fn new(broker: RedisBroker) -> Self {
        Self { broker }
    }
}

#[async_trait]
impl EventBus for RedisEventBus {
    async fn publish(&self, topic: &str, payload: String) -> Result<()> {
        let mut conn = self.broker.connection();
        let _: i64 = redis::cmd("PUBLISH").arg(self.broker.key(&format!("ev:{topic}"))).arg(payload).query_async(&mut conn).await?;
        Ok(())
    }

    async fn subscribe(&self, topic: &str) -> Result<BoxStream<'static, String>> {
        let mut pubsub = self.broker.client().get_async_pubsub().await?;
        pubsub.subscribe(self.broker.key(&format!("ev:{topic}"))).await?;
        Ok(pubsub.into_on_message().filter_map(|msg| async move { msg.get_payload::<String>().ok() }).boxed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn subscribers_get_what_is_published_on_their_topic_only() {
        let bus = MemoryEventBus::new();
        let mut a = bus.subscribe("org:a").await.unwrap();
        let mut b = bus.subscribe("org:b").await.unwrap();
        bus.publish("org:a", "one".into()).await.unwrap();
        bus.publish("org:b", "two".into()).await.unwrap();
        bus.publish("org:a", "three".into()).await.unwrap();
        assert_eq!(a.next().await.unwrap(), "one");
        assert_eq!(a.next().await.unwrap(), "three");
        assert_eq!(b.next().await.unwrap(), "two");
        // Publishing with nobody listening is fine and forgets the topic.
        drop(b);
        bus.publish("org:b", "lost".into()).await.unwrap();
        bus.publish("org:none", "x".into()).await.unwrap();
    }
}
