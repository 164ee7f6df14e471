//! `berth-speaker` (being written).

fn main() {}
