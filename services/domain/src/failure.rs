//! Why a job failed: one table of codes for the engine's errors and the
//! worker's own, stored on the job (snake_case) and shown in the API as an
//! enum. The worker, the engine and the queue map their errors into it.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// Each code with whether retrying may help (the queue retries the others
/// with backoff; these fail a job at once).
macro_rules! failure_codes {
    ($($variant:ident => $text:literal, permanent: $permanent:literal, $doc:literal;)+) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum FailureCode {
            $(#[doc = $doc] $variant,)+
        }

        impl FailureCode {
            pub const ALL: &'static [FailureCode] = &[$(FailureCode::$variant,)+];

            /// The stored form (`invalid_dataset`).
            pub fn as_str(self) -> &'static str {
                match self { $(FailureCode::$variant => $text,)+ }
            }

            /// Whether the same job can never succeed by retrying.
            pub fn is_permanent(self) -> bool {
                match self { $(FailureCode::$variant => $permanent,)+ }
            }
        }
    };
}

failure_codes! {
    InvalidArgument => "invalid_argument", permanent: true, "A hyperparameter or option the engine refused.";
    UnknownArchitecture => "unknown_architecture", permanent: true, "The architecture is not one the family builds.";
    InvalidDataset => "invalid_dataset", permanent: true, "The data cannot be trained on.";
    InvalidModel => "invalid_model", permanent: true, "A base, teacher or evaluated model cannot be loaded.";
    IncompatibleModel => "incompatible_model", permanent: true, "A model that does not fit the job (other family, classes or input).";
    Unsupported => "unsupported", permanent: true, "Something this release does not do yet.";
    DatasetDeleted => "dataset_deleted", permanent: true, "The dataset version was deleted before the job ran.";
    Cancelled => "cancelled", permanent: true, "The job was cancelled.";
    OutOfMemory => "out_of_memory", permanent: true, "The training process needed more memory than the job was given.";
    Io => "io", permanent: false, "The worker's local disk failed.";
    DeviceUnavailable => "device_unavailable", permanent: false, "The GPU (or device) could not be used.";
    StorageUnavailable => "storage_unavailable", permanent: false, "Blob storage did not answer.";
    WorkerLost => "worker_lost", permanent: false, "The worker stopped answering (crashed, killed or cut off).";
    WorkerPanic => "worker_panic", permanent: false, "The training process crashed.";
    Internal => "internal", permanent: false, "A fault in the engine; it has been logged.";
}

impl FailureCode {
    /// A stored code; anything else is an error, never a default.
    pub fn parse(raw: &str) -> Result<Self, DomainError> {
        Self::ALL
            .iter()
            .copied()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| DomainError::invalid("errorCode", format!("unknown failure code {raw:?}")))
    }
}

impl fmt::Display for FailureCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
