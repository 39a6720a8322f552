//! Identifiers that cross a boundary: prefixed, time-ordered, and typed so a job id
//! can never be passed where an asset id is expected.

use std::fmt;

macro_rules! prefixed_id {
    ($name:ident, $prefix:literal) => {
        #[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id: the prefix and a ULID, so ids sort by creation time.
            pub fn generate() -> Self {
                Self(format!(
                    "{}{}",
                    $prefix,
                    ulid::Ulid::new().to_string().to_lowercase()
                ))
            }

            /// Accepts only well-formed ids; anything else cannot name a stored row.
            pub fn parse(raw: &str) -> Option<Self> {
                let rest = raw.strip_prefix($prefix)?;
                (rest.len() == 26 && rest.chars().all(|c| c.is_ascii_alphanumeric()))
                    .then(|| Self(raw.to_owned()))
            }

            /// Wraps a value read back from our own storage.
            pub fn from_trusted(raw: String) -> Self {
                Self(raw)
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

prefixed_id!(JobId, "job_");
prefixed_id!(AssetId, "asset_");
prefixed_id!(EventId, "evt_");

/// The partner a key belongs to; every query is scoped by it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ClientId(String);

impl ClientId {
    /// Client names are operator-chosen: short, and safe inside S3 keys and subjects.
    pub fn parse(raw: &str) -> Option<Self> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        ok.then(|| Self(raw.to_owned()))
    }

    pub fn from_trusted(raw: String) -> Self {
        Self(raw)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_sort_by_time() {
        let a = JobId::generate();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = JobId::generate();
        assert_eq!(JobId::parse(a.as_str()), Some(a.clone()));
        assert!(a.as_str() < b.as_str());
    }

    #[test]
    fn malformed_ids_are_refused() {
        assert_eq!(JobId::parse("asset_01jabcdefghjkmnpqrstvwxyz0"), None);
        assert_eq!(JobId::parse("job_short"), None);
        assert_eq!(JobId::parse("job_01jabcdefghjkmnpqrstvwx'z0"), None);
        assert!(ClientId::parse("partner-a").is_some());
        assert!(ClientId::parse("partner a").is_none());
        assert!(ClientId::parse("").is_none());
    }
}
