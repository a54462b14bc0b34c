//! A criterion measurement of the bench thread's on-CPU time.
//!
//! The bench machines have two cores shared with compilers and other benches;
//! wall time there measures the queue for the CPU as much as the code. The
//! kernel counts the nanoseconds each thread spends on a CPU in
//! `/proc/thread-self/schedstat` (first field), which needs no `unsafe` and no
//! extra crate. The counter advances at scheduler ticks and switches, so a
//! reading may lag by one tick (a few ms); the bench keeps samples near a
//! second so that stays under 1%. Peers are compared on their user + system
//! time for the same reason. Where schedstat is unreadable (not Linux, or
//! `CONFIG_SCHED_INFO` off) this falls back to wall time and says so.

use std::sync::Once;
use std::time::{Duration, Instant};

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

/// Where the nanoseconds come from.
enum Clock {
    /// The thread's on-CPU time from `/proc/thread-self/schedstat`.
    Schedstat,
    /// Wall time since `origin`.
    Wall {
        /// Fixed start, so readings are plain nanosecond counts.
        origin: Instant,
    },
}

/// Measures on-CPU time; values are nanoseconds, formatted as criterion formats durations.
pub struct CpuTime {
    /// The chosen clock.
    clock: Clock,
    /// Lends its duration formatter (which also prints throughput).
    wall: WallTime,
}

impl CpuTime {
    /// Uses schedstat when readable, else wall time.
    pub fn new() -> Self {
        let clock = if schedstat_ns().is_some() {
            Clock::Schedstat
        } else {
            static WARN: Once = Once::new();
            WARN.call_once(|| {
                eprintln!("/proc/thread-self/schedstat is unreadable: measuring wall time instead");
            });
            Clock::Wall {
                origin: Instant::now(),
            }
        };
        Self {
            clock,
            wall: WallTime,
        }
    }

    fn now(&self) -> u64 {
        match &self.clock {
            Clock::Schedstat => schedstat_ns().expect("schedstat stays readable"),
            Clock::Wall { origin } => {
                u64::try_from(origin.elapsed().as_nanos()).expect("a bench lasts under 584 years")
            }
        }
    }
}

/// This thread's on-CPU nanoseconds so far.
fn schedstat_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_ascii_whitespace().next()?.parse().ok()
}

impl Measurement for CpuTime {
    type Intermediate = u64;
    type Value = Duration;

    fn start(&self) -> u64 {
        self.now()
    }

    fn end(&self, start: u64) -> Duration {
        Duration::from_nanos(self.now().saturating_sub(start))
    }

    fn add(&self, v1: &Duration, v2: &Duration) -> Duration {
        *v1 + *v2
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_secs_f64() * 1e9
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
