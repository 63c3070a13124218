//! glibc's `memcpy` on AMD CPUs, and the setting that avoids its slow path.
//!
//! glibc copies 2 KiB or more with `rep movsb` wherever the CPU advertises
//! fast string moves. On AMD Zen that instruction runs 20-30x slower when the
//! destination is not aligned (measured on this project's EPYC machine with
//! Debian 12's glibc 2.36: 16 KiB in 4.9 us against 0.18 us aligned), and a
//! WebSocket frame's payload lands 2, 4 or 10 bytes into tungstenite's write
//! buffer, so every message over 2 KiB took that path: ~8 us of a 16 KiB
//! echo's 28 (tests/bench/HISTORY.md, "glibc's memcpy on AMD"). Later glibc releases
//! stop using `rep movsb` on AMD below the L2 cache size (glibc bug 30994);
//! for the others the documented tunable does the same. glibc reads
//! tunables only as a process starts, so the process runs itself again with
//! the tunable set, before it has done anything else. A `GLIBC_TUNABLES` that
//! already sets the threshold is left alone: whoever set it chose.

/// glibc's tunable for the size from which `memcpy` uses `rep movsb`.
pub const TUNABLE: &str = "glibc.cpu.x86_rep_movsb_threshold";
/// High enough that `rep movsb` is never chosen (glibc stops using it at
/// the L2 cache size anyway).
const THRESHOLD: u64 = 1 << 30;
/// Set to the process id in the restarted process: one restart at most,
/// even where glibc drops `GLIBC_TUNABLES` (a setuid or setcap binary's
/// secure mode). The id keeps it to that process: the processes it starts
/// inherit the variable, not the tunable where they are started without it
/// (the bench starts Node.js so), and have ids of their own.
pub const RESTARTED: &str = "WS_HOST_MEMCPY_RESTARTED";

/// What [`restart_with_fast_memcpy`] found, for the log.
#[derive(Debug)]
pub enum MemcpyTuning {
    /// Not an AMD CPU with fast string moves under glibc: nothing to do.
    NotNeeded,
    /// `GLIBC_TUNABLES` sets the threshold (this process set it before
    /// running itself again, or the user did).
    Set(String),
    /// The process could not run itself again; it goes on as it is.
    RestartFailed(std::io::Error),
    /// The process ran itself again and the tunable was gone: glibc
    /// dropped it (secure mode). It goes on as it is.
    Dropped,
}

impl MemcpyTuning {
    /// Logs the outcome: a failed restart as a warning with what to do.
    pub fn log(&self) {
        match self {
            MemcpyTuning::NotNeeded => {}
            MemcpyTuning::Set(tunables) => tracing::debug!("memcpy: GLIBC_TUNABLES={tunables}"),
            MemcpyTuning::RestartFailed(error) => tracing::warn!(
                "cannot restart with glibc's `rep movsb` copies turned off ({error}): on this AMD CPU, messages \
                 over 2 KiB will cost several times more to copy; set GLIBC_TUNABLES={TUNABLE}={THRESHOLD} in the \
                 environment to avoid it"
            ),
            MemcpyTuning::Dropped => tracing::warn!(
                "glibc dropped GLIBC_TUNABLES on restart (a setuid or setcap binary runs in secure mode): on this \
                 AMD CPU, messages over 2 KiB will cost several times more to copy"
            ),
        }
    }
}

/// On an AMD CPU under glibc, runs this program again (same executable,
/// arguments and process id) with `GLIBC_TUNABLES` turning off `rep movsb`
/// copies, unless it already sets their threshold. Returns only when there
/// was nothing to do or the restart failed. Call it first thing in `main`:
/// nothing done before it survives.
pub fn restart_with_fast_memcpy() -> MemcpyTuning {
    if !slow_rep_movsb() {
        return MemcpyTuning::NotNeeded;
    }
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if tunables.contains(TUNABLE) {
        return MemcpyTuning::Set(tunables);
    }
    if std::env::var(RESTARTED).is_ok_and(|pid| pid == std::process::id().to_string()) {
        return MemcpyTuning::Dropped;
    }
    MemcpyTuning::RestartFailed(restart_with(&with_threshold(&tunables)))
}

/// `tunables` with the threshold appended (tunables are `:`-separated).
fn with_threshold(tunables: &str) -> String {
    let setting = format!("{TUNABLE}={THRESHOLD}");
    if tunables.is_empty() { setting } else { format!("{tunables}:{setting}") }
}

#[cfg(target_os = "linux")]
fn restart_with(tunables: &str) -> std::io::Error {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os();
    // The running executable itself, even if its path has changed since.
    let mut command = std::process::Command::new("/proc/self/exe");
    if let Some(name) = args.next() {
        command.arg0(name);
    }
    command.args(args).env("GLIBC_TUNABLES", tunables).env(RESTARTED, std::process::id().to_string()).exec()
}

#[cfg(not(target_os = "linux"))]
fn restart_with(_tunables: &str) -> std::io::Error {
    std::io::Error::other("not on Linux")
}

/// Whether glibc's `memcpy` uses `rep movsb` on a CPU where it is slow: an
/// AMD CPU that advertises fast string moves (ERMS), under glibc.
pub fn slow_rep_movsb() -> bool {
    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    {
        use std::arch::x86_64::{__cpuid, __cpuid_count};
        let vendor = __cpuid(0);
        let features = (vendor.eax >= 7).then(|| __cpuid_count(7, 0).ebx);
        let amd = [vendor.ebx, vendor.edx, vendor.ecx] == [*b"Auth", *b"enti", *b"cAMD"].map(u32::from_le_bytes);
        const ERMS: u32 = 1 << 9;
        amd && features.is_some_and(|ebx| ebx & ERMS != 0)
    }
    #[cfg(not(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu")))]
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threshold_is_added_to_the_tunables_already_set() {
        assert_eq!(with_threshold(""), "glibc.cpu.x86_rep_movsb_threshold=1073741824");
        assert_eq!(
            with_threshold("glibc.malloc.arena_max=2"),
            "glibc.malloc.arena_max=2:glibc.cpu.x86_rep_movsb_threshold=1073741824"
        );
    }

    #[cfg(all(target_os = "linux", target_arch = "x86_64", target_env = "gnu"))]
    #[test]
    fn amd_cpus_with_fast_string_moves_are_the_ones_tuned() {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap();
        let amd = cpuinfo.lines().any(|l| l.starts_with("vendor_id") && l.ends_with("AuthenticAMD"));
        let erms = cpuinfo.lines().any(|l| l.starts_with("flags") && l.split_whitespace().any(|f| f == "erms"));
        assert_eq!(slow_rep_movsb(), amd && erms);
    }
}
