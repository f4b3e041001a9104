//! Reading usage: endpoint rollups and training compute, grouped as asked,
//! in the plan's units.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use tenfold_store::queries::{jobs, usage};
use uuid::Uuid;

use crate::App;
use crate::error::{AppError, AppResult};
use crate::principal::{Principal, perms};

/// The longest range one query may cover.
const MAX_RANGE_DAYS: i64 = 400;

tenfold_domain::code_table! {
    /// A dimension usage rows are grouped by (`groupBy`).
    #[derive(PartialOrd, Ord)]
    pub enum UsageGroup {
        Hour => "HOUR",
        Day => "DAY",
        Endpoint => "ENDPOINT",
        Key => "KEY",
        CustomerKey => "CUSTOMER_KEY",
        Unit => "UNIT",
    }
}

tenfold_domain::code_table! {
    /// What is counted, in the plan's units.
    #[derive(PartialOrd, Ord)]
    pub enum UsageUnit {
        /// Answered (2xx) endpoint requests.
        Requests => "REQUESTS",
        /// Images classified in answered requests.
        Images => "IMAGES",
        InputTokens => "INPUT_TOKENS",
        OutputTokens => "OUTPUT_TOKENS",
        /// Model time of answered requests, in seconds.
        InferenceSeconds => "INFERENCE_SECONDS",
        /// Compute of training, distillation and evaluation jobs, in seconds.
        TrainingSeconds => "TRAINING_SECONDS",
        /// Requests answered with an error (4xx, 5xx): shown, never billed.
        FailedRequests => "FAILED_REQUESTS",
    }
}

/// One row of a usage query: the grouped dimensions (others `None`) and a
/// quantity of one unit. Units never add up with one another, so rows are
/// always per unit; `Unit` in `groupBy` is accepted for clarity.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    pub hour: Option<DateTime<Utc>>,
    pub day: Option<NaiveDate>,
    pub endpoint_id: Option<Uuid>,
    pub api_key_id: Option<Uuid>,
    pub customer_key_id: Option<Uuid>,
    pub unit: UsageUnit,
    pub quantity: f64,
}

type Key = (Option<DateTime<Utc>>, Option<NaiveDate>, Option<Uuid>, Option<Uuid>, Option<Uuid>, UsageUnit);

impl App {
    /// Usage in `[from, to)`, by the hour: endpoint rollups and job compute.
    #[tracing::instrument(skip_all, fields(org = %p.org))]
    pub async fn usage(&self, p: &Principal, from: DateTime<Utc>, to: DateTime<Utc>, group_by: &[UsageGroup]) -> AppResult<Vec<UsageRow>> {
        p.require(perms::USAGE_READ)?;
        if to <= from {
            return Err(AppError::bad_input("to", "`to` must be after `from`"));
        }
        if to - from > TimeDelta::days(MAX_RANGE_DAYS) {
            return Err(AppError::bad_input("to", format!("ask for at most {MAX_RANGE_DAYS} days at a time")));
        }
        let has = |g: UsageGroup| group_by.contains(&g);
        let nil = |id: Uuid| (!id.is_nil()).then_some(id);
        let tx = self.inner.store.tenant(p.org, p.user_id()).await?;
        let rollups = usage::rollups(&tx, p.org, from, to).await?;
        let compute = jobs::usage_records_between(&tx, p.org, "compute_seconds", from, to).await?;
        tx.commit().await?;
        let mut sums: BTreeMap<Key, f64> = BTreeMap::new();
        let mut add = |at: DateTime<Utc>, endpoint: Option<Uuid>, key: Option<Uuid>, customer: Option<Uuid>, unit: UsageUnit, q: f64| {
            if q == 0.0 {
                return;
            }
            let k = (
                has(UsageGroup::Hour).then(|| usage::hour_of(at)),
                has(UsageGroup::Day).then(|| at.date_naive()),
                endpoint.filter(|_| has(UsageGroup::Endpoint)),
                key.filter(|_| has(UsageGroup::Key)),
                customer.filter(|_| has(UsageGroup::CustomerKey)),
                unit,
            );
            *sums.entry(k).or_default() += q;
        };
        for r in &rollups {
            let (e, k, c) = (Some(r.endpoint_id), nil(r.api_key_id), nil(r.customer_key_id));
            if r.status_class == 2 {
                add(r.hour, e, k, c, UsageUnit::Requests, r.requests as f64);
                add(r.hour, e, k, c, UsageUnit::Images, r.images as f64);
                add(r.hour, e, k, c, UsageUnit::InputTokens, r.input_tokens as f64);
                add(r.hour, e, k, c, UsageUnit::OutputTokens, r.output_tokens as f64);
                add(r.hour, e, k, c, UsageUnit::InferenceSeconds, r.compute_ms as f64 / 1000.0);
            } else {
                add(r.hour, e, k, c, UsageUnit::FailedRequests, r.requests as f64);
            }
        }
        for c in &compute {
            add(c.created_at, None, None, None, UsageUnit::TrainingSeconds, c.quantity);
        }
        Ok(sums
            .into_iter()
            .map(|((hour, day, endpoint_id, api_key_id, customer_key_id, unit), quantity)| UsageRow {
                hour,
                day,
                endpoint_id,
                api_key_id,
                customer_key_id,
                unit,
                quantity,
            })
            .collect())
    }
}
