//! Whether the runner that made something is still running: what it made belongs to a live
//! session then, not to a run that ended or was killed.

/// True when `pid` is a running `lab-runner` process on this machine (not merely a live pid: a
/// pid reused by another program does not count).
pub fn is_live_runner(pid: &str) -> bool {
    let Ok(pid) = pid.trim().parse::<u32>() else {
        return false;
    };
    if pid == 0 {
        return false;
    }
    // `comm` is the program's file name, cut to 15 bytes ("lab-runner" fits).
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim_end() == "lab-runner")
}

#[cfg(test)]
mod tests {
    use super::is_live_runner;

    #[test]
    fn only_a_running_lab_runner_counts() {
        // This test binary is alive but is not lab-runner; pid 0 and garbage are nobody.
        assert!(!is_live_runner(&std::process::id().to_string()));
        assert!(!is_live_runner("0"));
        assert!(!is_live_runner("not a pid"));
        assert!(!is_live_runner("4294967295"));
    }
}
