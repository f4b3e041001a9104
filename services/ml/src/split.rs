//! Train/validation/test percentages, shared by every family: each family
//! groups its items its own way (images by class, chat by intent and unique
//! message) and cuts every group with [`SplitSpec::sizes`].

use serde::{Deserialize, Serialize};

use crate::{MlError, Result};

/// Train/validation/test percentages, e.g. `80/10/10` (the platform's
/// stored split) or `80/0/20`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub train: u32,
    pub val: u32,
    pub test: u32,
}

impl Default for SplitSpec {
    fn default() -> Self {
        Self { train: 80, val: 10, test: 10 }
    }
}

impl SplitSpec {
    pub fn parse(raw: &str) -> Result<Self> {
        let bad = || MlError::arg("split", format!("'{raw}' is not TRAIN/VAL/TEST percentages adding up to 100, e.g. 80/10/10"));
        let parts: Vec<u32> = raw.split('/').map(|p| p.trim().parse::<u32>()).collect::<Result<_, _>>().map_err(|_| bad())?;
        let &[train, val, test] = parts.as_slice() else { return Err(bad()) };
        if train + val + test != 100 || train == 0 {
            return Err(bad());
        }
        Ok(Self { train, val, test })
    }

    /// Items of a group of `n` per split: val and test get at least one
    /// each (when asked for) once the group has three — for 80/10/10 exactly
    /// the sizes `tenfold_datasets::splits` stores with a dataset version.
    pub fn sizes(&self, n: usize) -> (usize, usize) {
        if n < 3 {
            return (n, 0);
        }
        let part = |pct: u32| if pct == 0 { 0 } else { ((n as f64 * f64::from(pct) / 100.0).round() as usize).max(1) };
        let (val, test) = (part(self.val), part(self.test));
        (n.saturating_sub(val + test).max(1), val.min(n - 1))
    }
}
