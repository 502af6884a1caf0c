//! Windows: Job Objects and console control events. (Filled in by the Windows work.)

use std::io;

/// The program's job.
#[derive(Debug)]
pub(crate) struct Tree {
    pid: u32,
}

impl Tree {
    pub(crate) fn signal_stop(&self, _stop: &tend_core::StopSpec) -> io::Result<()> {
        let _ = self.pid;
        Ok(())
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        Ok(())
    }
}

pub(super) fn spawn(
    cmd: &mut tokio::process::Command,
) -> io::Result<(tokio::process::Child, Tree)> {
    let child = cmd.spawn()?;
    let pid = child.id().unwrap_or_default();
    Ok((child, Tree { pid }))
}
