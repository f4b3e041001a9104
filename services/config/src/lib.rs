//! Typed settings for every Tenfold process.
//!
//! Loaded in layers: built-in defaults → an optional TOML file → `TENFOLD_*`
//! environment variables (nested keys joined by `__`, e.g.
//! `TENFOLD_DATABASE__URL`). Secrets are `SecretString`: their `Debug` prints
//! `[REDACTED]`, so logging the settings never leaks them.

mod load;
mod settings;

pub use load::{ConfigError, load};
pub use secrecy::{ExposeSecret, SecretString};
pub use settings::*;
