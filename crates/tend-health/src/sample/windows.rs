//! Windows: Job Object accounting.
//!
//! tend runs the program in a Job Object, so the kernel knows the whole tree:
//! - CPU: `JobObjectBasicAccountingInformation` gives the user + kernel time of every process
//!   that ever ran in the job, terminated ones included (monotonic). One call. (The
//!   `...AndIoAccountingInformation` class carries the same times plus I/O counters tend does
//!   not use, and Wine does not implement it.)
//! - Memory: there is no "current memory of the job" query (the extended limit information
//!   has only the *peak*), so the job's process ids are listed
//!   (`JobObjectBasicProcessIdList`, one call) and each process's working set is read with
//!   `OpenProcess` + `K32GetProcessMemoryInfo` + `CloseHandle`: three cheap calls per
//!   process in the tree, nothing outside it.
#![allow(unsafe_code, reason = "Win32 calls; each block states why it is sound")]

use std::io;
use std::mem::{offset_of, size_of};
use std::os::windows::io::{AsRawHandle as _, BorrowedHandle};
use std::time::Duration;

use windows_sys::Win32::Foundation::{CloseHandle, ERROR_MORE_DATA, HANDLE};
use windows_sys::Win32::System::JobObjects::{
    JOBOBJECT_BASIC_ACCOUNTING_INFORMATION, JOBOBJECT_BASIC_PROCESS_ID_LIST,
    JobObjectBasicAccountingInformation, JobObjectBasicProcessIdList, QueryInformationJobObject,
};
use windows_sys::Win32::System::ProcessStatus::{K32GetProcessMemoryInfo, PROCESS_MEMORY_COUNTERS};
use windows_sys::Win32::System::Threading::{OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION};

use super::{Sample, SampleError};

fn size_u32<T>() -> u32 {
    u32::try_from(size_of::<T>()).unwrap_or(u32::MAX)
}

/// Samples the job's processes. `job` is borrowed: the caller keeps the job handle (it is
/// the handle tend's `Tree` owns; `BorrowedHandle::borrow_raw` turns it into this type, and
/// the lifetime guarantees it is not closed while sampling).
///
/// # Errors
/// When the job cannot be queried. Processes that exit during the sample are skipped.
pub fn sample_job(job: BorrowedHandle<'_>) -> Result<Sample, SampleError> {
    let handle: HANDLE = job.as_raw_handle();
    let mut acct = JOBOBJECT_BASIC_ACCOUNTING_INFORMATION::default();
    // SAFETY: `handle` is a live job handle for the borrow's lifetime; the buffer is a
    // correctly sized, writable struct of exactly this information class.
    let ok = unsafe {
        QueryInformationJobObject(
            handle,
            JobObjectBasicAccountingInformation,
            std::ptr::from_mut(&mut acct).cast(),
            size_u32::<JOBOBJECT_BASIC_ACCOUNTING_INFORMATION>(),
            std::ptr::null_mut(),
        )
    };
    if ok == 0 {
        return Err(SampleError::Os {
            call: "QueryInformationJobObject(accounting)",
            source: io::Error::last_os_error(),
        });
    }
    // 100 ns units.
    let ticks = u64::try_from(acct.TotalUserTime).unwrap_or(0)
        + u64::try_from(acct.TotalKernelTime).unwrap_or(0);
    let pids = process_ids(handle, acct.ActiveProcesses)?;
    let mut memory = 0u64;
    let mut counted = 0u32;
    for pid in pids {
        if let Some(ws) = working_set(pid) {
            memory += ws;
            counted += 1;
        }
    }
    Ok(Sample {
        memory_bytes: memory,
        cpu_time: Duration::from_nanos(ticks.saturating_mul(100)),
        processes: Some(counted),
    })
}

/// Lists the job's process ids, growing the buffer while the job grows under us.
fn process_ids(job: HANDLE, hint: u32) -> Result<Vec<u32>, SampleError> {
    // The list is a header (two u32) followed by ULONG_PTR ids; a usize buffer keeps the
    // alignment right on 32 and 64 bits.
    let header = offset_of!(JOBOBJECT_BASIC_PROCESS_ID_LIST, ProcessIdList) / size_of::<usize>();
    let mut capacity = usize::try_from(hint).unwrap_or(0) + 8;
    for _ in 0..4 {
        let mut buf = vec![0usize; header + capacity];
        let bytes = u32::try_from(buf.len() * size_of::<usize>()).unwrap_or(u32::MAX);
        // SAFETY: the buffer is writable for `bytes` bytes, suitably aligned for the
        // struct (usize alignment), and large enough for its header plus `capacity` ids.
        let ok = unsafe {
            QueryInformationJobObject(
                job,
                JobObjectBasicProcessIdList,
                buf.as_mut_ptr().cast(),
                bytes,
                std::ptr::null_mut(),
            )
        };
        let err = io::Error::last_os_error();
        if ok == 0 && err.raw_os_error() != i32::try_from(ERROR_MORE_DATA).ok() {
            return Err(SampleError::Os {
                call: "QueryInformationJobObject(process list)",
                source: err,
            });
        }
        let list = buf.as_ptr().cast::<JOBOBJECT_BASIC_PROCESS_ID_LIST>();
        // SAFETY: the buffer is initialised (zeroed, then written by the call), aligned, and
        // at least the size of the struct's header; only the two u32 fields are read.
        let (assigned, listed) = unsafe {
            (
                (*list).NumberOfAssignedProcesses,
                (*list).NumberOfProcessIdsInList,
            )
        };
        if ok != 0 {
            let listed = usize::try_from(listed).unwrap_or(0).min(capacity);
            return Ok(buf[header..header + listed]
                .iter()
                .filter_map(|&pid| u32::try_from(pid).ok())
                .collect());
        }
        capacity = usize::try_from(assigned).unwrap_or(capacity).max(capacity) * 2;
    }
    Err(SampleError::Os {
        call: "QueryInformationJobObject(process list)",
        source: io::Error::other("the job kept growing while being listed"),
    })
}

/// The working set of one process, or `None` if it is gone or not accessible.
fn working_set(pid: u32) -> Option<u64> {
    // SAFETY: plain call; a null result is checked.
    let process = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
    if process.is_null() {
        return None;
    }
    let mut counters = PROCESS_MEMORY_COUNTERS {
        cb: size_u32::<PROCESS_MEMORY_COUNTERS>(),
        ..Default::default()
    };
    // SAFETY: `process` is the live handle opened above; the struct is writable and its
    // `cb` states its size.
    let ok = unsafe { K32GetProcessMemoryInfo(process, &raw mut counters, counters.cb) };
    // SAFETY: closes the handle opened above, exactly once.
    unsafe { CloseHandle(process) };
    (ok != 0).then(|| u64::try_from(counters.WorkingSetSize).unwrap_or(u64::MAX))
}
