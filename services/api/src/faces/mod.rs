//! The partner-facing faces that are folders of their own: each translates requests and
//! answers of one published API over the shared job core (store, lifecycle, credits).

pub mod creations;
