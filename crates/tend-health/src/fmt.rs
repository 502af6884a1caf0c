//! Readable numbers for reasons and alerts: the spelling is tend-core's, shared by every
//! message tend writes.

use std::time::Duration;

pub(crate) use tend_core::fmt::{bytes, duration};

/// Whole milliseconds, the unit of probe timings (`after 12 ms`).
pub(crate) fn millis(d: Duration) -> u128 {
    d.as_millis()
}
