//! Atelier's wire contracts (`proto/atelier/**.proto`), generated at build time.

/// `atelier.jobs.v1`: dispatch, claim, job events and webhook requests.
pub mod jobs {
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atelier.jobs.v1.rs"));
    }
}

pub use prost::Message;
