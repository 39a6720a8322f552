//! Protocol-faithful fake servers, one per provider, for this crate's tests and the end-to-end
//! suite. Each binds `127.0.0.1:0`, speaks the documented wire protocol (providers.md), checks
//! the credential, counts submits and can be scripted per test: faults in the provider's exact
//! error shape, task timelines, output modes. Dropping a fake stops its server.

pub mod ark;
pub mod gemini;
pub mod jimeng;
pub mod openai;
mod server;

pub use server::{FakeServer, Fault, Faults, Step, TaskPlan, mp4, png};
