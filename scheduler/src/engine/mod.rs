//! The placement pipeline.

use crate::model::{Config, Status};
use crate::transition::Transition;

pub fn run(config: &Config, status: &Status, now: i64) -> Transition {
    let _ = (config, status, now);
    Transition::default()
}
