//! Jobs of the native API: the request rules, the stored row and its JSON view, the
//! accepting write, and the routes.

pub mod cancel;
pub mod request;
pub mod routes;
pub mod store;
pub mod view;
