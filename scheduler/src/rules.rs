//! Evaluation of location rules and expressions against node attributes.
