//! Engine tests: trace snapshots per element family, property tests over
//! generated models, and the architecture invariants of the pure core.

mod ad_hoc;
mod architecture;
mod properties;
mod support;
mod traces;
mod waits;
