//! Which tend this is: the version, the commit it was built from, the target and the build
//! profile, as `tend --version [--json]`, `tend status --json` and the metrics'
//! `tend_build_info` say. The values are fixed at build time by build.rs.

use serde::Serialize;

/// The build's identity. All fields are plain strings so scripts can compare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct BuildInfo {
    /// The package version (Cargo.toml), e.g. `0.1.0`.
    pub(crate) version: &'static str,
    /// The full git commit hash, or `unknown` when built outside a git checkout without
    /// `TEND_BUILD_COMMIT` (e.g. from a source tarball).
    pub(crate) commit: &'static str,
    /// The Rust target triple, e.g. `x86_64-unknown-linux-musl`.
    pub(crate) target: &'static str,
    /// `release` or `debug`.
    pub(crate) profile: &'static str,
}

/// This binary's build.
pub(crate) const BUILD: BuildInfo = BuildInfo {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("TEND_BUILD_COMMIT"),
    target: env!("TEND_BUILD_TARGET"),
    profile: env!("TEND_BUILD_PROFILE"),
};

/// When this tend's source was last changed, in seconds since 1970 (the commit's time, or
/// `SOURCE_DATE_EPOCH`); 0 when the build could not tell. A clock before it is wrong.
pub(crate) const BUILD_EPOCH: u64 = {
    match u64::from_str_radix(env!("TEND_BUILD_EPOCH"), 10) {
        Ok(n) => n,
        Err(_) => 0,
    }
};

impl BuildInfo {
    /// `tend 0.1.0 (commit 1a2b3c4d5e6f, x86_64-unknown-linux-musl, release)`: the name and
    /// version first, as clap prints them, so `tend --version | cut -d' ' -f2` is the version.
    pub(crate) fn line(&self) -> String {
        let commit = self.commit.get(..12).unwrap_or(self.commit);
        format!(
            "tend {} (commit {commit}, {}, {})",
            self.version, self.target, self.profile
        )
    }

    /// The same as one JSON object.
    pub(crate) fn json(&self) -> String {
        // Serialising four strings cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Registers the build with the metrics renderer (`tend_build_info`); once per process.
    pub(crate) fn register_metrics(&self) {
        tend_health::metrics::set_build_info(tend_health::metrics::BuildInfo {
            version: self.version.to_owned(),
            commit: self.commit.to_owned(),
            target: self.target.to_owned(),
            profile: self.profile.to_owned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_starts_with_name_and_version_and_shortens_the_commit() {
        let b = BuildInfo {
            version: "1.2.3",
            commit: "0123456789abcdef0123456789abcdef01234567",
            target: "x86_64-unknown-linux-musl",
            profile: "release",
        };
        assert_eq!(
            b.line(),
            "tend 1.2.3 (commit 0123456789ab, x86_64-unknown-linux-musl, release)"
        );
        let v: serde_json::Value = serde_json::from_str(&b.json()).unwrap();
        assert_eq!(v["commit"], "0123456789abcdef0123456789abcdef01234567");
        assert_eq!(v["profile"], "release");
    }

    #[test]
    fn this_build_is_described() {
        assert_eq!(BUILD.version, env!("CARGO_PKG_VERSION"));
        assert!(!BUILD.commit.is_empty());
        assert!(BUILD.profile == "debug" || BUILD.profile == "release");
        // The triple starts with this CPU architecture.
        assert!(
            BUILD.target.starts_with(std::env::consts::ARCH),
            "{}",
            BUILD.target
        );
    }
}
