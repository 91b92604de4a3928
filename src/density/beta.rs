//! The Beta distribution (`dist=beta`): MLTK's 4-parameter fit on min–max normalised data and its
//! grid/bisection outlier ranges on [0, 1], rescaled to the data.

use serde::{Deserialize, Serialize};

use super::{BoundaryRange, FitError, Threshold};

/// A fitted Beta (work in progress: method of moments only).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Beta {
    pub alpha: f64,
    pub beta: f64,
    pub loc: f64,
    pub scale: f64,
    pub min: f64,
    pub max: f64,
    pub cardinality: u64,
}

impl Beta {
    pub fn fit(_values: &[f64]) -> Result<Beta, FitError> {
        Err(FitError::Numerical("Beta"))
    }
    pub fn boundaries(&self, _t: Threshold) -> Vec<BoundaryRange> {
        Vec::new()
    }
    pub fn pdf(&self, _x: f64) -> f64 {
        0.0
    }
}
