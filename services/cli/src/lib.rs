//! Boot code shared by the `tenfold` binary and the black-box tests:
//! settings → backends → application.

pub mod boot;
pub mod logging;
pub mod ml;
