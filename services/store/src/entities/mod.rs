//! sea-orm entities, one per table. They stay inside `store` and `app`:
//! the GraphQL layer maps them to its own types.

pub mod api_keys;
pub mod audit_events;
pub mod dataset_versions;
pub mod datasets;
pub mod email_tokens;
pub mod invitations;
pub mod memberships;
pub mod organizations;
pub mod refresh_tokens;
pub mod users;
