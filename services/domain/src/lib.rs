//! Domain values of Tenfold: identifiers and newtypes that can only hold valid
//! values ("parse, don't validate"). No I/O lives here.

mod codes;
pub mod compare;
mod email;
mod endpoint;
mod error;
mod failure;
mod family;
pub mod gate;
mod hyperparameters;
mod ids;
mod job;
mod names;
mod network;
mod password;
mod plan;
pub mod report;
mod role;
mod scope;

pub use email::Email;
pub use endpoint::{CanaryRules, EndpointSlug, EndpointState, Scaling, canary_takes};
pub use error::DomainError;
pub use failure::FailureCode;
pub use family::{Architecture, ArtifactInfo, Catalog, DataStats, Estimate, Family, FamilyPlan, JobShape};
pub use hyperparameters::{Hyperparameters, ParamKind, ParamSpec, parse_split};
pub use ids::{ApiKeyId, AuditEventId, CustomerKeyId, EndpointId, InvitationId, JobId, ModelVersionId, OrgId, RefreshTokenId, UserId};
pub use job::{JobKind, JobStatus, VALIDATION_POOL};
pub use names::{OrgName, Slug};
pub use network::is_public_ip;
pub use password::Password;
pub use plan::{Plan, Quotas};
pub use role::Role;
pub use scope::{Scope, ScopeSet};
