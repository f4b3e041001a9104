//! The embedded job queue: one process, entries in memory. Whatever it
//! loses on a restart the database still has; the reconciler re-dispatches.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;

use crate::Result;
use crate::jobs::{DeadLetter, Delivery, JobMessage, JobQueue};

struct Pending {
    message: JobMessage,
    consumer: String,
    delivered_at: Instant,
    deliveries: u64,
}

#[derive(Default)]
struct Stream {
    unread: VecDeque<(String, JobMessage)>,
    pending: HashMap<String, Pending>,
    dead: Vec<DeadLetter>,
}

#[derive(Default)]
pub struct MemoryJobQueue {
    streams: Mutex<HashMap<String, Stream>>,
    next_id: Mutex<u64>,
    arrived: Notify,
}

impl MemoryJobQueue {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, device: &str, f: impl FnOnce(&mut Stream) -> T) -> T {
        let mut streams = self.streams.lock().unwrap_or_else(|p| p.into_inner());
        f(streams.entry(device.to_owned()).or_default())
    }

    fn take_unread(&self, device: &str, consumer: &str, count: usize) -> Vec<Delivery> {
        self.with(device, |s| {
            let mut out = Vec::new();
            while out.len() < count {
                let Some((id, message)) = s.unread.pop_front() else { break };
                s.pending
                    .insert(id.clone(), Pending { message, consumer: consumer.to_owned(), delivered_at: Instant::now(), deliveries: 1 });
                out.push(Delivery { id, message: Ok(message), deliveries: 1 });
            }
            out
        })
    }
}

#[async_trait]
impl JobQueue for MemoryJobQueue {
    async fn publish(&self, device: &str, message: JobMessage) -> Result<String> {
        let id = {
            let mut next = self.next_id.lock().unwrap_or_else(|p| p.into_inner());
            *next += 1;
            format!("{}-0", *next)
        };
        self.with(device, |s| s.unread.push_back((id.clone(), message)));
        self.arrived.notify_waiters();
        Ok(id)
    }

    async fn read(&self, device: &str, consumer: &str, count: usize, block: Duration) -> Result<Vec<Delivery>> {
        let deadline = Instant::now() + block;
        loop {
            // Register interest before looking, so a publish in between is not missed.
            let notified = self.arrived.notified();
            let got = self.take_unread(device, consumer, count);
            if !got.is_empty() {
                return Ok(got);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    async fn reclaim(&self, device: &str, consumer: &str, min_idle: Duration, count: usize) -> Result<Vec<Delivery>> {
        Ok(self.with(device, |s| {
            let now = Instant::now();
            let mut ids: Vec<String> =
                s.pending.iter().filter(|(_, p)| now.duration_since(p.delivered_at) >= min_idle).map(|(id, _)| id.clone()).collect();
            ids.sort();
            ids.truncate(count);
            ids.into_iter()
                .filter_map(|id| {
                    let p = s.pending.get_mut(&id)?;
                    p.consumer = consumer.to_owned();
                    p.delivered_at = now;
                    p.deliveries += 1;
                    Some(Delivery { id, message: Ok(p.message), deliveries: p.deliveries })
                })
                .collect()
        }))
    }

    async fn touch(&self, device: &str, consumer: &str, id: &str) -> Result<()> {
        self.with(device, |s| {
            if let Some(p) = s.pending.get_mut(id)
                && p.consumer == consumer
            {
                p.delivered_at = Instant::now();
            }
        });
        Ok(())
    }

    async fn ack(&self, device: &str, id: &str) -> Result<()> {
        self.with(device, |s| s.pending.remove(id));
        Ok(())
    }

    async fn dead_letter(&self, device: &str, delivery: &Delivery, reason: &str) -> Result<()> {
        self.with(device, |s| {
            s.pending.remove(&delivery.id);
            let (org, job) = match &delivery.message {
                Ok(m) => (Some(m.org.to_string()), Some(m.job.to_string())),
                Err(_) => (None, None),
            };
            s.dead.push(DeadLetter { id: delivery.id.clone(), org, job, reason: reason.to_owned(), deliveries: delivery.deliveries });
        });
        Ok(())
    }

    async fn dead_letters(&self, device: &str, count: usize) -> Result<Vec<DeadLetter>> {
        Ok(self.with(device, |s| s.dead.iter().take(count).cloned().collect()))
    }

    async fn pending(&self, device: &str) -> Result<u64> {
        Ok(self.with(device, |s| s.pending.len() as u64))
    }
}
