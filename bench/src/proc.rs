//! What a process uses, read from `/proc`: resident memory, open files, CPU time.

use std::time::Duration;

use anyhow::{Context, Result};

/// Clock ticks per second in `/proc/<pid>/stat` (`USER_HZ`, 100 on every Linux architecture that
/// runs this).
const TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory of process `pid`, in bytes.
pub fn rss(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .context("no VmRSS in /proc/<pid>/status")?;
    Ok(kib * 1024)
}

/// Open file descriptors of process `pid`.
pub fn open_files(pid: u32) -> Result<u64> {
    let entries = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .with_context(|| format!("listing /proc/{pid}/fd"))?;
    Ok(entries.count() as u64)
}

/// CPU time (user and system) process `pid` has used so far, all its threads together.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    cpu_time_of(&stat)
}

/// CPU time of the calling process.
pub fn own_cpu_time() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    cpu_time_of(&stat)
}

fn cpu_time_of(stat: &str) -> Result<Duration> {
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let after_name = stat.rsplit_once(')').context("malformed stat line")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 = fields
        .get(11..13)
        .context("short stat line")?
        .iter()
        .map(|field| field.parse::<u64>())
        .sum::<Result<u64, _>>()
        .context("malformed CPU times")?;
    Ok(Duration::from_secs_f64(ticks as f64 / TICKS_PER_SECOND))
}

/// CPU use of a process over a stretch of wall time, as a share of one core (1.0 = one core busy).
#[derive(Debug, Clone, Copy)]
pub struct CpuMeter {
    pid: u32,
    cpu: Duration,
    wall: std::time::Instant,
}

impl CpuMeter {
    /// Starts measuring process `pid`.
    pub fn start(pid: u32) -> Result<CpuMeter> {
        Ok(CpuMeter {
            pid,
            cpu: cpu_time(pid)?,
            wall: std::time::Instant::now(),
        })
    }

    /// Cores used on average since [`CpuMeter::start`].
    pub fn cores(&self) -> Result<f64> {
        let used = cpu_time(self.pid)?.saturating_sub(self.cpu);
        Ok(used.as_secs_f64() / self.wall.elapsed().as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(rss(pid).unwrap() > 0);
        assert!(open_files(pid).unwrap() >= 3);
        let stat = "4242 (a (weird) name) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1";
        assert_eq!(cpu_time_of(stat).unwrap(), Duration::from_secs(3));
    }
}
