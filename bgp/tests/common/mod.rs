//! What the `bgp` integration tests share: the set-up of sessions and speakers, and the
//! helpers that read what a session asked for. Each test file takes it with `mod common;`;
//! it knows nothing of any one test's scenario.
#![allow(
    dead_code,
    reason = "each test file uses some of these helpers, none uses all"
)]

pub(crate) mod fake_peer;
pub(crate) mod session;
pub(crate) mod speaker;
