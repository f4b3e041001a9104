use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id (UUIDv7), so that ids sort by creation and
            /// pagination cursors are stable.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

id_type!(/// An organization: the tenant.
    OrgId);
id_type!(/// A person who can sign in.
    UserId);
id_type!(/// An API key of an organization.
    ApiKeyId);
id_type!(/// A pending invitation to join an organization.
    InvitationId);
id_type!(/// One refresh token of a session family.
    RefreshTokenId);
id_type!(/// One audit-log entry.
    AuditEventId);
id_type!(/// A training, distillation or evaluation job.
    JobId);
id_type!(/// A trained model, the output of a job.
    ModelVersionId);
id_type!(/// A hosted endpoint serving a model version or alias.
    EndpointId);
id_type!(/// A key an organization issued to one of its own customers.
    CustomerKeyId);
