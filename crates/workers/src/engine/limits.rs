//! The CPU-time limit of one event: the engine's interrupt handler stops JavaScript that ran on
//! the CPU for longer than the limit since the event entered the engine.

use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What the engine may spend on one event, and what it spent.
#[derive(Debug)]
pub(crate) struct CpuBudget {
    limit: Duration,
    /// When the running entry into JavaScript started: wall time (cheap to read, and never less
    /// than CPU time) and the thread's CPU time.
    started: Cell<Option<(Instant, Duration)>>,
    /// The handler stopped JavaScript since the last [`CpuBudget::take_exceeded`].
    exceeded: Cell<bool>,
}

impl CpuBudget {
    pub(crate) fn new(limit: Duration) -> Rc<Self> {
        Rc::new(CpuBudget {
            limit,
            started: Cell::new(None),
            exceeded: Cell::new(false),
        })
    }

    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// JavaScript starts running for an event.
    pub(crate) fn start(&self) {
        self.started.set(Some((Instant::now(), thread_cpu_time())));
    }

    /// JavaScript stopped running.
    pub(crate) fn stop(&self) {
        self.started.set(None);
    }

    /// Whether the limit was hit since the last call.
    pub(crate) fn take_exceeded(&self) -> bool {
        self.exceeded.replace(false)
    }

    /// The interrupt handler: true stops the running JavaScript with an uncatchable error.
    pub(crate) fn should_interrupt(&self) -> bool {
        let Some((wall, cpu)) = self.started.get() else {
            return false;
        };
        // CPU time never exceeds wall time: reading the thread's CPU clock (a system call) is
        // needed only once the wall clock says the limit may be reached.
        if wall.elapsed() < self.limit {
            return false;
        }
        if thread_cpu_time().saturating_sub(cpu) < self.limit {
            return false;
        }
        self.exceeded.set(true);
        true
    }
}

/// CPU time the calling thread has used.
fn thread_cpu_time() -> Duration {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through the pointer, which points to a live
    // local; CLOCK_THREAD_CPUTIME_ID is supported on every platform the engine runs on.
    #[allow(unsafe_code)]
    let result = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    if result != 0 {
        return Duration::ZERO;
    }
    Duration::new(now.tv_sec as u64, now.tv_nsec as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_busy_thread_exceeds_its_budget_and_an_idle_one_does_not() {
        let budget = CpuBudget::new(Duration::from_millis(30));
        assert!(!budget.should_interrupt(), "nothing runs");
        budget.start();
        std::thread::sleep(Duration::from_millis(40));
        assert!(
            !budget.should_interrupt(),
            "sleeping uses wall time, not CPU time"
        );
        let spin = Instant::now();
        while !budget.should_interrupt() {
            assert!(spin.elapsed() < Duration::from_secs(5), "never interrupted");
        }
        assert!(budget.take_exceeded());
        assert!(!budget.take_exceeded());
        budget.stop();
        assert!(!budget.should_interrupt());
    }
}
