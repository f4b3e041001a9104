//! Domain values of Tenfold: identifiers and newtypes that can only hold valid
//! values ("parse, don't validate"). No I/O lives here.

mod email;
mod error;
mod ids;
mod job;
mod names;
mod network;
mod password;
mod plan;
mod role;
mod scope;

pub use email::Email;
pub use error::DomainError;
pub use ids::{ApiKeyId, AuditEventId, InvitationId, JobId, ModelVersionId, OrgId, RefreshTokenId, UserId};
pub use job::{Hyperparameters, IMAGE_ARCHITECTURES, JobKind, JobStatus, parse_split, reference_throughput};
pub use names::{OrgName, Slug};
pub use network::is_public_ip;
pub use password::Password;
pub use plan::{Plan, Quotas};
pub use role::Role;
pub use scope::{Scope, ScopeSet};
