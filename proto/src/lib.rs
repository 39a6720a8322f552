//! Atelier's wire contracts (`proto/atelier/**.proto`), generated at build time.

/// `atelier.jobs.v1`: dispatch, claim, job events and webhook requests.
pub mod jobs {
    // Generated: a claim's granted `JobSpec` outweighs its denial, and boxing it would change
    // every caller for one message per attempt.
    #[allow(clippy::large_enum_variant)]
    pub mod v1 {
        include!(concat!(env!("OUT_DIR"), "/atelier.jobs.v1.rs"));
    }
}

pub use prost::Message;
