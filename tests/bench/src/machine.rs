//! Where the machine's CPU goes during a run: PostgreSQL, the server and the bench share the
//! two cores, and a figure only means something beside how busy they were.

use std::collections::HashMap;
use std::time::Instant;

/// The processes told apart, by their command name (the rest counts only in the machine's).
const NAMES: [&str; 3] = ["postgres", "makker", "makker-bench"];

/// CPU time (user and system, in clock ticks) by process name and of the whole machine, and
/// the time the hypervisor ran something else while the machine's virtual CPUs waited.
pub struct CpuSample {
    at: Instant,
    by_name: HashMap<&'static str, u64>,
    machine: u64,
    steal: u64,
}

impl CpuSample {
    /// Reads `/proc` now. Processes that start later count from zero, so a sample is taken
    /// once the server and its database connections are up.
    pub fn now() -> CpuSample {
        let mut by_name = HashMap::new();
        for (name, ticks) in processes() {
            if let Some(key) = NAMES.iter().find(|n| **n == name) {
                *by_name.entry(*key).or_insert(0) += ticks;
            }
        }
        let (machine, steal) = machine_ticks().unwrap_or_default();
        CpuSample {
            at: Instant::now(),
            by_name,
            machine,
            steal,
        }
    }

    /// Cores busy between `self` and `later`, per name and for the whole machine (`"all"`),
    /// and the cores' worth of time stolen from it (`"steal"`, part of `"all"`).
    pub fn cores_until(&self, later: &CpuSample) -> Vec<(&'static str, f64)> {
        let ticks_per_s = clock_ticks_per_second();
        let seconds = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let cores = |before: u64, after: u64| after.saturating_sub(before) as f64 / ticks_per_s / seconds;
        let mut out: Vec<(&'static str, f64)> = NAMES
            .iter()
            .map(|n| {
                let before = self.by_name.get(n).copied().unwrap_or(0);
                let after = later.by_name.get(n).copied().unwrap_or(0);
                (*n, cores(before, after))
            })
            .collect();
        out.push(("all", cores(self.machine, later.machine)));
        out.push(("steal", cores(self.steal, later.steal)));
        out
    }
}

/// Every process's command name and CPU ticks (`utime + stime`, fields 14 and 15).
fn processes() -> Vec<(String, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    dir.filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|stat| parse_stat(&stat))
        .collect()
}

/// `pid (comm) state …`: the name may hold spaces and parentheses, so it ends at the last `)`.
fn parse_stat(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// The machine's busy ticks from `/proc/stat` (all but idle and iowait), and its stolen ones.
fn machine_ticks() -> Option<(u64, u64)> {
    parse_machine(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// `cpu user nice system idle iowait irq softirq steal guest guest_nice`, the first line.
fn parse_machine(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().next()?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    let (idle, iowait) = (*ticks.get(3)?, *ticks.get(4)?);
    // guest and guest_nice (9 and 10) are already counted in user and nice.
    let total: u64 = ticks.iter().take(8).sum();
    Some((total - idle - iowait, *ticks.get(7)?))
}

/// `USER_HZ`, the unit of `/proc`'s CPU times: 100 on Linux, whatever the kernel's own tick.
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_with_spaces_and_parentheses_is_read_whole() {
        let stat = "42 (post (gres) x) S 1 2 3 4 5 6 7 8 9 10 250 17 0 0 20 0 1 0 100";
        assert_eq!(parse_stat(stat), Some(("post (gres) x".to_owned(), 267)));
    }

    #[test]
    fn the_machine_counts_stolen_time_as_busy_and_apart() {
        let stat = "cpu  100 5 20 900 30 1 2 40 7 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n";
        assert_eq!(parse_machine(stat), Some((168, 40)));
    }

    #[test]
    fn a_truncated_line_is_skipped() {
        assert_eq!(parse_stat("42 (makker) S 1 2"), None);
    }
}
