//! What async providers' tasks have in common: an upstream id to record before anything else,
//! and a status in our vocabulary (providers.md §8.3).

use std::fmt;

/// The id an async provider gave a submitted task (Ark `id`, Jimeng `task_id`). Record it as
/// soon as it is returned: a later attempt resumes this task instead of submitting again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTaskId(pub String);

impl UpstreamTaskId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UpstreamTaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An upstream task's state, in our words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The provider gave up on it (Ark after `execution_expires_after`; Jimeng `expired` or
    /// `not_found` after 12 h).
    Expired,
}

impl TaskStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
        }
    }
}
