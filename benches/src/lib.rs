//! Criterion micro-benchmarks and whole-system benchmarks against other BGP speakers. Built by the codec, session and benchmark issues.

pub mod incluster;
pub mod layer2;
pub mod whole;
