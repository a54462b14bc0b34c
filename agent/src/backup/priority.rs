//! `--low-priority`: run the backup at nice 10 and in the idle I/O class.
//!
//! On Linux both the nice value and the I/O priority belong to a thread
//! and are inherited by the threads it creates. So the backup lowers the
//! priority of its own engine thread *before* it starts the reader and
//! seal threads, which inherit it; the runtime's network threads keep the
//! normal priority (they mostly wait). The nice value is set with
//! `setpriority(2)` through rustix; the I/O class with the `ionice`
//! program (util-linux) on this thread's id, since no safe wrapper of
//! `ioprio_set(2)` exists. Either failing is a warning, not an error.

use super::progress::Reporter;

/// The nice value of a low-priority backup.
pub const LOW_PRIORITY_NICE: i32 = 10;

/// Lowers the calling thread's CPU and I/O priority; threads it starts
/// afterwards inherit both.
pub fn lower_this_thread(reporter: &Reporter) {
    if let Err(error) = rustix::process::setpriority_process(None, LOW_PRIORITY_NICE) {
        reporter.warn(&format!(
            "unable to lower the CPU priority to nice 10 - {error}"
        ));
    }
    let tid = rustix::thread::gettid().as_raw_nonzero().get();
    let status = std::process::Command::new("ionice")
        .args(["-c", "3", "-p", &tid.to_string()])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => reporter.warn(&format!(
            "unable to set the idle I/O class: ionice exited with {status}"
        )),
        Err(error) => reporter.warn(&format!(
            "unable to set the idle I/O class: ionice - {error}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lowered_thread_and_its_children_run_at_nice_10_in_the_idle_io_class() {
        std::thread::spawn(|| {
            lower_this_thread(&Reporter::new(false));
            let own = rustix::process::getpriority_process(None).unwrap();
            let child = std::thread::spawn(|| rustix::process::getpriority_process(None).unwrap())
                .join()
                .unwrap();
            assert_eq!((own, child), (LOW_PRIORITY_NICE, LOW_PRIORITY_NICE));
            let tid = rustix::thread::gettid().as_raw_nonzero().get();
            let shown = std::process::Command::new("ionice")
                .args(["-p", &tid.to_string()])
                .output()
                .unwrap();
            assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), "idle");
        })
        .join()
        .unwrap();
    }
}
