//! Handing back memory that only start-up needed. A supervisor runs for months and does
//! little; what it touched once while starting (parsing the command line and the config,
//! opening the logs) should not stay counted against it for all that time.
//!
//! Measured in bench/README.md ("Where the memory goes"): the pages of tend's own code
//! were most of its proportional set size, because the kernel maps 64 KiB of an executable
//! around every page that is touched (fault-around), so start-up maps nearly the whole
//! binary. After [`after_startup_soon`], only the code that actually runs again is mapped again.

/// Before any thread starts: with glibc, one malloc arena for the whole process. glibc
/// gives each thread that allocates an arena of its own, and each keeps its touched pages;
/// tend's threads allocate little and rarely at the same time, so they do not need them.
pub(crate) fn at_start() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread
    // exists.
    unsafe {
        nix::libc::mallopt(nix::libc::M_ARENA_MAX, 1);
    }
}

/// Drops this process's mappings of its executable code (the pages stay in the page cache
/// and come back on first use, from memory) and, with glibc, returns freed heap pages,
/// after `delay`. Linux only; elsewhere it does nothing.
///
/// On a short-lived thread of its own, not on the supervisor's: whatever code a thread runs
/// right after the drop maps back, 64 KiB around each page (fault-around), and the
/// supervisor's way back from a timer into its event loop and to sleep is long (measured in
/// bench/README.md, "Idle code pages": idle VmRSS ~200 KiB higher when the drop ran in a
/// task). At `delay` the supervisor is asleep in its event loop, so only this thread's few
/// pages come back, and they go with the thread.
pub(crate) fn after_startup_soon(delay: std::time::Duration) {
    // Detached: if tend ends before `delay`, the process exit ends the thread.
    #[cfg(target_os = "linux")]
    let _ = std::thread::Builder::new()
        .name("tend-trim".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            std::thread::sleep(delay);
            linux::release();
        });
    #[cfg(not(target_os = "linux"))]
    let _ = delay;
}

#[cfg(target_os = "linux")]
mod linux {
    use std::os::unix::fs::MetadataExt;

    pub(super) fn release() {
        drop_code_pages();
        #[cfg(target_env = "gnu")]
        #[allow(unsafe_code)]
        // SAFETY: malloc_trim only gives free heap memory back to the OS; it is safe to call
        // at any time from any thread.
        unsafe {
            nix::libc::malloc_trim(0);
        }
    }

    /// The read-only executable mappings of tend's own binary, as (start, length).
    fn code_ranges() -> Vec<(usize, usize)> {
        let Ok(exe) = std::fs::metadata("/proc/self/exe") else {
            return Vec::new();
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return Vec::new();
        };
        let file = (
            nix::libc::major(exe.dev()),
            nix::libc::minor(exe.dev()),
            exe.ino(),
        );
        maps.lines().filter_map(|l| code_range(l, file)).collect()
    }

    /// The range of one line of `/proc/self/maps` if it maps code of `file` (device major,
    /// minor, inode). An inode number alone names a file only on its own device: another
    /// file system's library with the same number must not be taken for tend.
    fn code_range(line: &str, file: (u32, u32, u64)) -> Option<(usize, usize)> {
        // start-end perms offset dev inode path
        let mut f = line.split_whitespace();
        let (range, perms) = (f.next()?, f.next()?);
        let (major, minor) = f.nth(1)?.split_once(':')?;
        let inode: u64 = f.next()?.parse().ok()?;
        let dev = (
            u32::from_str_radix(major, 16).ok()?,
            u32::from_str_radix(minor, 16).ok()?,
        );
        // Only code: never writable, so the file has exactly its bytes. Dropping a
        // writable private mapping would lose what was written to it.
        if perms != "r-xp" || (dev.0, dev.1, inode) != file {
            return None;
        }
        let (a, b) = range.split_once('-')?;
        let a = usize::from_str_radix(a, 16).ok()?;
        let b = usize::from_str_radix(b, 16).ok()?;
        (b > a).then_some((a, b - a))
    }

    fn drop_code_pages() {
        for (start, len) in code_ranges() {
            // SAFETY: the range is a whole private, read-only, executable mapping of tend's
            // binary, which is never written to (the kernel keeps a running executable from
            // being modified). MADV_DONTNEED only removes the page-table entries; the next
            // access to any of these pages, including the return from this call, faults in
            // the identical bytes from the file again.
            #[allow(unsafe_code)]
            unsafe {
                nix::libc::madvise(
                    start as *mut nix::libc::c_void,
                    len,
                    nix::libc::MADV_DONTNEED,
                );
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn finds_the_test_binarys_code_and_survives_dropping_it() {
            let ranges = super::code_ranges();
            assert!(!ranges.is_empty(), "no r-xp mapping of /proc/self/exe");
            super::release();
            // Still running: the code came back.
            assert_eq!(super::code_ranges(), ranges);
        }

        #[test]
        fn only_code_of_the_same_file_on_the_same_device_is_taken() {
            let tend = (0xfd, 0x01, 1_234_567);
            let line = |perms: &str, dev: &str| {
                format!("55d0c0a00000-55d0c0b00000 {perms} 00001000 {dev} 1234567   /usr/bin/tend")
            };
            let range = Some((0x55d0_c0a0_0000, 0x10_0000));
            assert_eq!(super::code_range(&line("r-xp", "fd:01"), tend), range);
            // The same inode number on another file system is another file.
            assert_eq!(super::code_range(&line("r-xp", "08:02"), tend), None);
            // Written pages are not the file's bytes.
            assert_eq!(super::code_range(&line("rw-p", "fd:01"), tend), None);
            assert_eq!(super::code_range("garbage", tend), None);
        }
    }
}
