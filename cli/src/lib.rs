//! The parts of the `provguard` command line that other targets share: the organisation
//! simulator and the benchmark harness (used by `provguard bench` and by the criterion benches).

pub mod bench;
pub mod simulate;
