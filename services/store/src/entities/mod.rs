//! sea-orm entities, one per table. They stay inside `store` and `app`:
//! the GraphQL layer maps them to its own types.

pub mod api_keys;
pub mod audit_events;
pub mod customer_keys;
pub mod dataset_versions;
pub mod datasets;
pub mod email_tokens;
pub mod endpoints;
pub mod invitations;
pub mod job_checkpoints;
pub mod job_dispatch;
pub mod job_events;
pub mod job_fair_share;
pub mod jobs;
pub mod memberships;
pub mod model_aliases;
pub mod model_versions;
pub mod models;
pub mod organizations;
pub mod recommendation_events;
pub mod refresh_tokens;
pub mod upload_expiry;
pub mod uploads;
pub mod usage_events;
pub mod usage_records;
pub mod usage_rollups;
pub mod users;
pub mod webhook_deliveries;
pub mod webhook_outbox;
pub mod webhooks;
pub mod workers;
