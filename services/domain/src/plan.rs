use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::DomainError;

/// The commercial plan of an organization; it sets the organization's quotas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Plan {
    Free,
    Pro,
    Enterprise,
}

/// Limits an organization works within. Enforced by the datasets, jobs and
/// endpoints use cases; shown to users through `organization { quotas }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    pub storage_bytes: u64,
    pub max_upload_bytes: u64,
    pub concurrent_jobs: u32,
    pub monthly_compute_seconds: u64,
    pub monthly_endpoint_requests: u64,
    /// Images classified by endpoints (a request may carry several).
    pub monthly_endpoint_images: u64,
    pub monthly_endpoint_tokens: u64,
    pub max_api_keys: u32,
    pub max_members: u32,
}

const GIB: u64 = 1024 * 1024 * 1024;

impl Plan {
    pub const ALL: [Plan; 3] = [Plan::Free, Plan::Pro, Plan::Enterprise];

    pub fn as_str(&self) -> &'static str {
        match self {
            Plan::Free => "FREE",
            Plan::Pro => "PRO",
            Plan::Enterprise => "ENTERPRISE",
        }
    }

    pub fn quotas(&self) -> Quotas {
        match self {
            Plan::Free => Quotas {
                storage_bytes: 5 * GIB,
                max_upload_bytes: GIB,
                concurrent_jobs: 1,
                monthly_compute_seconds: 10 * 3600,
                monthly_endpoint_requests: 100_000,
                monthly_endpoint_images: 1_000_000,
                monthly_endpoint_tokens: 10_000_000,
                max_api_keys: 10,
                max_members: 5,
            },
            Plan::Pro => Quotas {
                storage_bytes: 100 * GIB,
                max_upload_bytes: 20 * GIB,
                concurrent_jobs: 4,
                monthly_compute_seconds: 200 * 3600,
                monthly_endpoint_requests: 5_000_000,
                monthly_endpoint_images: 50_000_000,
                monthly_endpoint_tokens: 500_000_000,
                max_api_keys: 100,
                max_members: 50,
            },
            Plan::Enterprise => Quotas {
                storage_bytes: 2048 * GIB,
                max_upload_bytes: 100 * GIB,
                concurrent_jobs: 32,
                monthly_compute_seconds: 5000 * 3600,
                monthly_endpoint_requests: 200_000_000,
                monthly_endpoint_images: 2_000_000_000,
                monthly_endpoint_tokens: 20_000_000_000,
                max_api_keys: 1000,
                max_members: 1000,
            },
        }
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Plan {
    type Err = DomainError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "FREE" => Ok(Plan::Free),
            "PRO" => Ok(Plan::Pro),
            "ENTERPRISE" => Ok(Plan::Enterprise),
            _ => Err(DomainError::invalid("plan", format!("unknown plan {s:?}; use FREE, PRO or ENTERPRISE"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn higher_plans_never_have_lower_quotas() {
        for pair in Plan::ALL.windows(2) {
            let (lo, hi) = (pair[0].quotas(), pair[1].quotas());
            assert!(hi.storage_bytes > lo.storage_bytes);
            assert!(hi.concurrent_jobs > lo.concurrent_jobs);
            assert!(hi.monthly_compute_seconds > lo.monthly_compute_seconds);
            assert!(hi.monthly_endpoint_requests > lo.monthly_endpoint_requests);
            assert!(hi.monthly_endpoint_tokens > lo.monthly_endpoint_tokens);
        }
        assert_eq!("pro".parse::<Plan>().unwrap(), Plan::Pro);
    }
}
