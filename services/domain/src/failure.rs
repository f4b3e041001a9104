//! Why a job failed: one table of codes for the engine's errors and the
//! worker's own, stored on the job (snake_case) and shown in the API as an
//! enum. The worker, the engine and the queue map their errors into it.

use serde::{Deserialize, Serialize};

use crate::DomainError;

crate::code_table! {
    /// Why a job failed; stored snake_case.
    #[derive(Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum FailureCode {
        /// A hyperparameter or option the engine refused.
        InvalidArgument => "invalid_argument",
        /// The architecture is not one the family builds.
        UnknownArchitecture => "unknown_architecture",
        /// The data cannot be trained on.
        InvalidDataset => "invalid_dataset",
        /// A base, teacher or evaluated model cannot be loaded.
        InvalidModel => "invalid_model",
        /// A model that does not fit the job (other family, classes or input).
        IncompatibleModel => "incompatible_model",
        /// Something this release does not do yet.
        Unsupported => "unsupported",
        /// The dataset version was deleted before the job ran.
        DatasetDeleted => "dataset_deleted",
        /// The job was cancelled.
        Cancelled => "cancelled",
        /// The training process needed more memory than the job was given.
        OutOfMemory => "out_of_memory",
        /// The worker's local disk failed.
        Io => "io",
        /// The GPU (or device) could not be used.
        DeviceUnavailable => "device_unavailable",
        /// Blob storage did not answer.
        StorageUnavailable => "storage_unavailable",
        /// The worker stopped answering (crashed, killed or cut off).
        WorkerLost => "worker_lost",
        /// The training process crashed.
        WorkerPanic => "worker_panic",
        /// A fault in the engine; it has been logged.
        Internal => "internal",
    }
}

impl FailureCode {
    /// Whether the same job can never succeed by retrying: the queue fails
    /// these once and retries the others with backoff.
    pub fn is_permanent(self) -> bool {
        !matches!(
            self,
            FailureCode::Io
                | FailureCode::DeviceUnavailable
                | FailureCode::StorageUnavailable
                | FailureCode::WorkerLost
                | FailureCode::WorkerPanic
                | FailureCode::Internal
        )
    }

    /// The code as every API shows it (GraphQL's `JobErrorCode`, job
    /// events, webhooks): the stored spelling in capitals.
    pub fn api_code(self) -> String {
        self.as_str().to_ascii_uppercase()
    }

    /// A stored code; anything else is an error, never a default.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::from_code(raw).ok_or_else(|| DomainError::invalid("errorCode", format!("unknown failure code {raw:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_round_trips_and_has_one_spelling() {
        let mut seen = std::collections::BTreeSet::new();
        for c in FailureCode::ALL {
            assert_eq!(FailureCode::parse(c.as_str()).unwrap(), *c);
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert_eq!(serde_json::to_value(c).unwrap(), serde_json::json!(c.as_str()));
        }
        assert!(FailureCode::parse("oops").is_err());
        assert!(FailureCode::InvalidDataset.is_permanent() && !FailureCode::WorkerLost.is_permanent());
    }
}
