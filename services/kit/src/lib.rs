//! The small kit every role shares: typed configuration, ids, telemetry, shutdown,
//! NATS naming and the S3 client. Roles share this and `atelier-proto`, never each other.

pub mod config;
pub mod health;
pub mod ids;
pub mod metrics;
pub mod nats;
pub mod shutdown;
pub mod startup;
pub mod storage;
pub mod telemetry;
