//! The per-node speaker: cluster state to BGP announcements, `berth-speaker` and `berthctl`. Built by the speaker issue.
