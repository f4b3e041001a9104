//! GraphQL object types. They wrap the app's views; sea-orm entities never
//! appear here.

mod connection;
mod datasets;
mod endpoints;
mod families;
mod identity;
mod jobs;
mod models;
mod org;
mod reports;
mod webhooks;

pub use connection::connection;
pub use datasets::*;
pub use endpoints::*;
pub use families::*;
pub use identity::*;
pub use jobs::*;
pub use models::*;
pub use org::*;
pub use reports::*;
pub use webhooks::*;

use async_graphql::{Enum, Interface};

/// A member's role; ordered by power.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::Role")]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "tenfold_domain::Plan")]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

/// An object that can be fetched by its global id with `node(id:)`.
// The interface derive takes its objects by value; a `Node` lives for one response.
#[allow(clippy::large_enum_variant)]
#[derive(Interface)]
#[graphql(field(name = "id", ty = "&async_graphql::ID"))]
pub enum Node {
    User(User),
    Organization(Organization),
    Invitation(Invitation),
    ApiKey(ApiKey),
    AuditEvent(AuditEvent),
    Dataset(Dataset),
    DatasetVersion(DatasetVersion),
    Job(Job),
    Model(Model),
    ModelVersion(ModelVersion),
    Webhook(Webhook),
    Endpoint(Endpoint),
    CustomerKey(CustomerKey),
}
