//! Kubernetes label selectors: the one reading in `api::label_selector`, shared with the
//! controller.

pub use api::label_selector::{matches, problem};
