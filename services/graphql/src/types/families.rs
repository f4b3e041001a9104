//! What each trainable family offers, as its plan declares it: the job
//! wizard and API clients read architectures and hyperparameters (with
//! types, ranges and defaults) from here instead of hard-coding them.

use async_graphql::{Json, SimpleObject};
use tenfold_domain::{FamilyPlan, ParamKind, ParamSpec};

use super::{Family, JobKind};

#[derive(SimpleObject)]
pub struct FamilyInfo {
    pub family: Family,
    pub kinds: Vec<JobKind>,
    /// The first is the default.
    pub architectures: Vec<ArchitectureInfo>,
    pub hyperparameters: Vec<HyperparameterInfo>,
}

#[derive(SimpleObject)]
pub struct ArchitectureInfo {
    pub name: String,
    pub description: String,
    /// Usable as a distillation student.
    pub student: bool,
}

#[derive(SimpleObject)]
pub struct HyperparameterInfo {
    /// As in `submitJob(input: {hyperparameters: {…}})`.
    pub name: String,
    /// `INTEGER`, `NUMBER`, `CHOICE`, `BOOLEAN` or `SPLIT`.
    pub r#type: String,
    pub description: String,
    /// Null: optional, off unless given.
    pub default: Json<serde_json::Value>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// The lower bound itself is refused.
    pub min_exclusive: bool,
    /// CHOICE: the accepted values.
    pub options: Vec<String>,
    /// CHOICE: several may be given, separated by commas.
    pub multiple: bool,
}

impl From<&ParamSpec> for HyperparameterInfo {
    fn from(p: &ParamSpec) -> Self {
        let mut info = Self {
            name: p.name.to_owned(),
            r#type: String::new(),
            description: p.description.to_owned(),
            default: Json(p.default.clone()),
            min: None,
            max: None,
            min_exclusive: false,
            options: Vec::new(),
            multiple: false,
        };
        match &p.kind {
            ParamKind::Integer { min, max } => {
                info.r#type = "INTEGER".into();
                (info.min, info.max) = (Some(*min as f64), Some(*max as f64));
            }
            ParamKind::Number { min, max, min_exclusive } => {
                info.r#type = "NUMBER".into();
                (info.min, info.max, info.min_exclusive) = (Some(*min), Some(*max), *min_exclusive);
            }
            ParamKind::Choice { options, multiple } => {
                info.r#type = "CHOICE".into();
                info.options = options.iter().map(|o| (*o).to_owned()).collect();
                info.multiple = *multiple;
            }
            ParamKind::Boolean => info.r#type = "BOOLEAN".into(),
            ParamKind::Split => info.r#type = "SPLIT".into(),
        }
        info
    }
}

impl From<&dyn FamilyPlan> for FamilyInfo {
    fn from(plan: &dyn FamilyPlan) -> Self {
        Self {
            family: plan.family().into(),
            kinds: plan.kinds().iter().map(|k| (*k).into()).collect(),
            architectures: plan
                .architectures()
                .iter()
                .map(|a| ArchitectureInfo { name: a.name.to_owned(), description: a.description.to_owned(), student: a.student })
                .collect(),
            hyperparameters: plan.hyperparameters().iter().map(HyperparameterInfo::from).collect(),
        }
    }
}
