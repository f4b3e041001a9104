//! Use cases of Tenfold. Each public method of [`App`] is one operation of
//! the product; the GraphQL and REST layers only translate to and from it.
//! Authorization happens here, first thing in each use case, against a
//! [`Principal`] built from the credential alone.

mod app;
mod audit_action;
mod authn;
mod datasets;
mod endpoints;
mod error;
mod identity;
mod jobs;
mod models;

/// Inputs of the identity use cases.
pub mod identity_inputs {
    pub use crate::identity::SignUpInput;
}

pub use datasets::{DatasetVersionView, DatasetView, UploadInput};
pub use endpoints::{
    Admission, Callable, Caller, CanaryInput, CanaryView, CustomerGrant, CustomerKeyInput, CustomerKeyView, DeployInput, DeployTarget,
    EndpointTarget, EndpointView, FeedbackEvent, FeedbackKind, Invocation, MAX_FEEDBACK_EVENTS, Metered, ScalingInput, ServedVersion,
    UpdateEndpointInput, UsageEvent, UsageGroup, UsageRow, UsageUnit, VersionFeedback,
};
pub use jobs::{
    CANCEL_TOPIC, CheckpointView, Claimed, FailOutcome, Held, JobEventView, JobView, LeasedJob, SubmitJobInput, UsageView,
    VALIDATION_MEMORY_MB, WAKE_TOPIC, backoff,
};
/// What the worker produces and how it says so.
pub mod job_worker {
    pub use crate::jobs::worker_api::{Files, Produced};
}
pub use models::{
    AliasMove, AliasView, ArtifactFile, DEFAULT_LINK_SECONDS, Download, ImportInput, LATEST, Lineage, MAX_LINK_SECONDS, ModelVersionView,
    ModelView, PRODUCTION, SetAliasInput, SignedQuery, SignedUrl,
};
pub use uploads::{Appended, CHECKSUM_ALGORITHMS, Checksum, Chunk, MAX_OPEN_UPLOADS, NewUpload, UploadState};
pub mod jwt;
mod passwords;
mod principal;
pub mod secrets;
mod tenancy;
mod uploads;
pub mod views;
mod webhooks;

pub use app::{App, Backends};
pub use audit_action::AuditAction;
pub use error::{AppError, AppResult, ConflictReason, ErrorCode};
pub use principal::{Actor, Permission, Principal, RequestMeta, perms};
pub use tenfold_store::queries::Page;
pub use webhooks::{AttemptResult, DeliveryView, DueDelivery, WEBHOOK_EVENTS, WebhookView, check_webhook_url, webhook_signature};
