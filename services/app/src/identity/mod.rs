//! Identity and tenancy use cases.

mod api_keys;
mod email_flows;
mod members;
mod orgs;
mod sessions;
mod throttle;

pub use sessions::SignUpInput;
