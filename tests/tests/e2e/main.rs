//! Atelier end to end, against real NATS JetStream, PostgreSQL and S3: each scenario runs
//! in its own sandbox and checks the platform's invariants before it tears down.

mod api;
mod assets;
mod cancel;
mod console;
mod creations;
mod engines;
mod events;
mod fairness;
mod fuzz;
mod hardening;
mod lifecycle;
mod limits;
mod observability;
mod providers;
mod restart;
mod tasks;
mod upscale;
mod webhooks;
