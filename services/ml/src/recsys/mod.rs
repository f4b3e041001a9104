//! The recommendation family: recommenders trained from interaction logs,
//! evaluated with RecBole's protocol so the numbers compare with published
//! ones, and served as top-K lists.
//!
//! - [`data`]: an interactions file read into dense ids; [`split`]: RecBole's
//!   per-user random split and per-user item lists.
//! - [`factors`]: latent factors and their scores; [`adam`]: lazy Adam on
//!   rows; [`bpr`] (implicit feedback) and [`explicit`] (ratings) train them
//!   in [`fit`]'s epoch loop; [`popularity`] is the baseline.
//! - [`metrics`]: full-ranking Recall/NDCG/MRR/Hit/Precision@K, coverage,
//!   popularity bias; [`train`] puts it together; [`model`] is the folder
//!   and the loaded model that answers.

pub mod adam;
pub mod bpr;
pub mod data;
pub mod distill;
pub mod evaluate;
pub mod explicit;
pub mod factors;
mod family;
pub mod features;
pub mod fit;
pub mod metrics;
pub mod model;
pub mod popularity;
pub mod report;
pub mod split;
pub mod train;
pub mod two_tower;
pub use family::RecommendationFamily;
