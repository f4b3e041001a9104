//! GraphQL object types. They wrap the app's views; sea-orm entities never
//! appear here.

mod connection;
mod datasets;
mod identity;
mod jobs;
mod org;
mod webhooks;

pub use connection::connection;
pub use datasets::*;
pub use identity::*;
pub use jobs::*;
pub use org::*;
pub use webhooks::*;

use async_graphql::{Enum, Interface};

/// A member's role; ordered by power.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    Owner,
    Admin,
    Member,
    Viewer,
}

impl From<tenfold_domain::Role> for Role {
    fn from(r: tenfold_domain::Role) -> Self {
        match r {
            tenfold_domain::Role::Owner => Role::Owner,
            tenfold_domain::Role::Admin => Role::Admin,
            tenfold_domain::Role::Member => Role::Member,
            tenfold_domain::Role::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for tenfold_domain::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Owner => tenfold_domain::Role::Owner,
            Role::Admin => tenfold_domain::Role::Admin,
            Role::Member => tenfold_domain::Role::Member,
            Role::Viewer => tenfold_domain::Role::Viewer,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

impl From<tenfold_domain::Plan> for Plan {
    fn from(p: tenfold_domain::Plan) -> Self {
        match p {
            tenfold_domain::Plan::Free => Plan::Free,
            tenfold_domain::Plan::Pro => Plan::Pro,
            tenfold_domain::Plan::Enterprise => Plan::Enterprise,
        }
    }
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
    ModelVersion(ModelVersion),
    Webhook(Webhook),
}
