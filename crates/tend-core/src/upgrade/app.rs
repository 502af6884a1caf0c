//! The decisions of the application directory form (`tend upgrade NAME DIR/`), pure: which
//! directories tend may swap as a whole, and which renames put a release's directory in
//! place whatever an interruption left behind.
//!
//! A directory release lives in exactly one place at a time: in the store as `<id>/app/`,
//! or in place as the application directory (the live one). A swap is at most two renames
//! on one volume: the live directory into the store as the other release's `app/`, then
//! the wanted release's `app/` to the live path. Each rename is atomic, so whatever step a
//! crash cuts short, the next tend finds each release complete in one of the two places
//! (the live path empty between the two renames), and [`moves`] says what is left to do.

use std::path::{Component, Path};

/// One rename of a directory swap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    /// The live directory goes into the store, as the other release's `app/`.
    LiveToStore,
    /// The wanted release's `app/` goes to the live path.
    StoreToLive,
}

/// Why a directory swap cannot go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The wanted release is not in the store and nothing is in place: it is lost.
    Missing,
    /// Both releases are in the store and something else is in place (a directory put
    /// there by hand): tend does not move what it does not know.
    Unknown,
}

/// The renames that put the wanted release's directory in place. `live`: something is at
/// the live path; `wanted_stored`: the wanted release's `app/` is in the store;
/// `other_stored`: the other release's (the one the change comes from or goes to) is.
///
/// # Errors
///
/// [`Problem`]: the directories are not in a state a swap (or a part of one) leaves.
pub fn moves(live: bool, wanted_stored: bool, other_stored: bool) -> Result<Vec<Move>, Problem> {
    match (live, wanted_stored, other_stored) {
        // Not in the store: it is the one in place (done, or done before a crash).
        (true, false, _) => Ok(Vec::new()),
        (false, false, _) => Err(Problem::Missing),
        // The live path is empty: a crash between the two renames, or a first put.
        (false, true, _) => Ok(vec![Move::StoreToLive]),
        (true, true, false) => Ok(vec![Move::LiveToStore, Move::StoreToLive]),
        (true, true, true) => Err(Problem::Unknown),
    }
}

/// Shared directories that hold other programs too: the directory of a `command` there
/// cannot be swapped as a whole. Compared without case for Windows paths.
const SHARED_UNIX: &[&str] = &[
    "/",
    "/bin",
    "/sbin",
    "/lib",
    "/lib64",
    "/usr",
    "/usr/bin",
    "/usr/sbin",
    "/usr/lib",
    "/usr/lib64",
    "/usr/libexec",
    "/usr/share",
    "/usr/local",
    "/usr/local/bin",
    "/usr/local/sbin",
    "/usr/local/lib",
    "/opt",
    "/opt/homebrew/bin",
    "/etc",
    "/var",
    "/var/lib",
    "/home",
    "/root",
    "/srv",
    "/tmp",
    "/var/tmp",
    "/snap/bin",
    "/Applications",
];
const SHARED_WINDOWS: &[&str] = &[
    "windows",
    "windows\\system32",
    "windows\\syswow64",
    "program files",
    "program files (x86)",
    "programdata",
    "users",
];

/// Whether `dir` (the directory holding the program named by `command`, absolute) is one
/// tend may swap as a whole; `Err` says why not.
///
/// # Errors
///
/// A root, a shared system directory (`/usr/bin`, `C:\Windows`, ...), or a relative path.
pub fn swappable(dir: &Path) -> Result<(), String> {
    let s = dir.to_string_lossy();
    let why = || {
        format!(
            "`{s}` is a directory shared with other programs; the application directory form \
             swaps the whole directory holding `command`'s program, so put the program in a \
             directory of its own (e.g. /opt/<name>/ or C:\\Program Files\\<name>\\) and reinstall"
        )
    };
    // A Windows path (`C:\...`, `C:/...`), judged the same on every host.
    let b = s.as_bytes();
    if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
        let rest = s[2..].replace('/', "\\");
        let rest = rest.trim_matches('\\').to_ascii_lowercase();
        if rest.is_empty() || SHARED_WINDOWS.contains(&rest.as_str()) {
            return Err(why());
        }
        return Ok(());
    }
    if !s.starts_with('/') {
        return Err(format!("`{s}` is not an absolute path"));
    }
    let trimmed = s.trim_end_matches('/');
    let norm = if trimmed.is_empty() { "/" } else { trimmed };
    if SHARED_UNIX.contains(&norm)
        || dir
            .components()
            .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(why());
    }
    Ok(())
}

/// Whether the relative path `rel` (of a file in an application directory, `/`-separated)
/// is one of `preserve`'s paths or inside one: those are the running release's, not the
/// build's, so they are carried over and left out of a build's hash.
#[must_use]
pub fn preserved(rel: &str, preserve: &[String]) -> bool {
    preserve.iter().any(|p| {
        let p = p.trim_matches('/').replace('\\', "/");
        let p = p.strip_prefix("./").unwrap_or(&p);
        rel == p || rel.strip_prefix(p).is_some_and(|r| r.starts_with('/'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use Move::{LiveToStore, StoreToLive};

    /// Every state two atomic renames can leave, from either side: what is left to do.
    #[test]
    fn every_state_of_the_two_renames() {
        type Case = (&'static str, (bool, bool, bool), Result<Vec<Move>, Problem>);
        let cases: [Case; 6] = [
            (
                "before the swap: the other in place, the wanted staged",
                (true, true, false),
                Ok(vec![LiveToStore, StoreToLive]),
            ),
            (
                "killed between the two renames",
                (false, true, true),
                Ok(vec![StoreToLive]),
            ),
            (
                "after the swap (done again)",
                (true, false, true),
                Ok(vec![]),
            ),
            (
                "in place, the other never stored",
                (true, false, false),
                Ok(vec![]),
            ),
            (
                "nothing anywhere",
                (false, false, true),
                Err(Problem::Missing),
            ),
            (
                "a third directory in place",
                (true, true, true),
                Err(Problem::Unknown),
            ),
        ];
        for (what, (live, wanted, other), want) in cases {
            assert_eq!(moves(live, wanted, other), want, "{what}");
        }
    }

    /// A forward swap, then its undo, interrupted after every rename: each ends with
    /// exactly one directory in place and the other in the store.
    #[test]
    fn a_swap_and_its_undo_cut_at_every_rename() {
        // (live holds, a stored, b stored): the three places of releases a and b.
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        enum At {
            A,
            B,
            None,
        }
        fn apply(state: &mut (At, bool, bool), want_a: bool, m: Move) {
            match m {
                LiveToStore => {
                    match state.0 {
                        At::A => state.1 = true,
                        At::B => state.2 = true,
                        At::None => panic!("nothing to move"),
                    }
                    state.0 = At::None;
                }
                StoreToLive => {
                    assert_eq!(state.0, At::None);
                    if want_a {
                        state.1 = false;
                        state.0 = At::A;
                    } else {
                        state.2 = false;
                        state.0 = At::B;
                    }
                }
            }
        }
        fn put(state: &mut (At, bool, bool), want_a: bool, cut: usize) -> bool {
            let (wanted, other) = if want_a {
                (state.1, state.2)
            } else {
                (state.2, state.1)
            };
            let ms = moves(state.0 != At::None, wanted, other).unwrap();
            for (i, m) in ms.into_iter().enumerate() {
                if i == cut {
                    return false;
                }
                apply(state, want_a, m);
            }
            true
        }
        // a in place, b staged; put b, cut at each rename; then put a back (the undo).
        for cut in 0..3 {
            let mut s = (At::A, false, true);
            put(&mut s, false, cut);
            assert!(put(&mut s, true, usize::MAX));
            assert_eq!(s, (At::A, false, true), "cut at {cut}");
            // And forward again, then undo cut at each rename, then the undo again.
            assert!(put(&mut s, false, usize::MAX));
            assert_eq!(s, (At::B, true, false));
            for cut2 in 0..3 {
                let mut u = s;
                put(&mut u, true, cut2);
                assert!(put(&mut u, true, usize::MAX));
                assert_eq!(u, (At::A, false, true), "undo cut at {cut2}");
            }
        }
    }

    #[test]
    fn shared_directories_are_refused() {
        for ok in [
            "/opt/api",
            "/srv/api/bin",
            "/app",
            "C:\\Program Files\\api",
            "D:\\svc\\api",
            "c:/apps/api",
        ] {
            assert_eq!(swappable(Path::new(ok)), Ok(()), "{ok}");
        }
        for bad in [
            "/",
            "/usr/bin",
            "/usr/local/bin/",
            "/opt",
            "/tmp",
            "C:\\",
            "C:\\Windows\\System32",
            "c:\\PROGRAM FILES",
            "C:/Windows/",
            "relative/dir",
            "/opt/../usr/bin",
        ] {
            assert!(swappable(Path::new(bad)).is_err(), "{bad}");
        }
        assert!(
            swappable(Path::new("/usr/bin"))
                .unwrap_err()
                .contains("a directory of its own")
        );
    }

    #[test]
    fn preserved_paths_and_what_is_inside_them() {
        let p = vec![
            "data".to_owned(),
            "config/local.yaml".to_owned(),
            "./logs/".to_owned(),
        ];
        for (rel, want) in [
            ("data", true),
            ("data/db.sqlite", true),
            ("database", false),
            ("config/local.yaml", true),
            ("config/app.yaml", false),
            ("config", false),
            ("logs/x.log", true),
            ("api", false),
        ] {
            assert_eq!(preserved(rel, &p), want, "{rel}");
        }
    }
}
