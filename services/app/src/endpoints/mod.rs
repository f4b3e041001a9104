//! Hosted endpoints: deployments of a version or an alias (with canaries),
//! the keys our tenants issue to their customers, the gateway's per-request
//! authorization and routing, exact usage metering and the usage view.
//! The models themselves run in `tenfold-serving`; the HTTP protocol is
//! the API crate's.

mod admit;
mod canary;
mod customer_keys;
mod deploy;
mod feedback;
mod invoke;
mod meter;
mod usage;
mod views;

pub use admit::Admission;
pub(crate) use canary::CanaryWatch;
pub use customer_keys::CustomerKeyInput;
pub use deploy::{CanaryInput, DeployInput, DeployTarget, ScalingInput, UpdateEndpointInput};
pub use feedback::{FeedbackEvent, FeedbackKind, MAX_EVENTS as MAX_FEEDBACK_EVENTS, VersionFeedback};
pub(crate) use invoke::GatewayCache;
pub use invoke::{Callable, Caller, CustomerGrant, Invocation, ServedVersion};
pub(crate) use meter::Meter;
pub use meter::{Metered, UsageEvent};
pub use usage::{UsageGroup, UsageRow, UsageUnit};
pub use views::{CanaryView, CustomerKeyView, EndpointTarget, EndpointView};
