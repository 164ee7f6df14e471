//! `berthctl` (being written).

fn main() {}
