//! tend's exit codes: the one table (documented in docs/cli.md).
//!
//! The same numbers are the CLI's exit codes, `tend service`'s exit codes (which systemd's
//! `RestartPreventExitStatus=` and launchd read), and the service-specific exit codes tend
//! reports to the Windows SCM (`sc query`: `SERVICE_EXIT_CODE` with `WIN32_EXIT_CODE`
//! 1066), so one table explains all of them.

/// Success.
pub const OK: u8 = 0;
/// The supervised program failed: tend gave up after too many restarts, or the program
/// failed under `restart.policy = "never"`. The OS manager must not restart tend after it:
/// that would undo the give-up.
pub const PROGRAM_FAILED: u8 = 1;
/// `tend doctor`: a check failed. The same number as [`PROGRAM_FAILED`]: either way the
/// service does not run as configured until something is fixed.
pub const CHECK_FAILED: u8 = 1;
/// The config is invalid or the command line is wrong. Restarting cannot fix it.
pub const INVALID: u8 = 2;
/// The service is not installed.
pub const NOT_INSTALLED: u8 = 3;
/// tend lacks a permission (not Administrator / root).
pub const PERMISSION: u8 = 4;
/// An operating-system operation failed (I/O, spawning, signals, the service manager).
pub const OS: u8 = 5;
/// `tend apply`: every service is as asked, and this run changed at least one. (Apart
/// from the failures above, so that a script tells "done, with changes" from "failed";
/// `tend service` never exits with it.)
pub const CHANGED: u8 = 10;
/// `tend apply --check`: at least one service would change; nothing was changed.
pub const PENDING: u8 = 11;

/// `tend upgrade` / `tend rollback`: the new release failed its verification (or the
/// change was interrupted) and was rolled back; the previous release runs again and passed
/// its verification. Nothing is broken, but nothing was upgraded either.
pub const ROLLED_BACK: u8 = 6;
/// `tend upgrade` / `tend rollback`: the new release failed and the previous one, put back,
/// did not pass its verification either (or could not be put back). The operator must look.
pub const UPGRADE_BROKEN: u8 = 7;

/// The Windows SCM's service-specific exit code for one of the codes above.
#[must_use]
pub const fn service_specific(code: u8) -> u32 {
    code as u32
}
