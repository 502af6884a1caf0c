//! Shell completions and man pages, generated at build time from the clap definitions in
//! cli.rs and stored gzipped (build.rs), for `tend completions <shell>` and `tend man`.

use std::io::Read as _;

include!(concat!(env!("OUT_DIR"), "/clidocs.rs"));

/// The completion script for `shell`.
pub(crate) fn completion(shell: crate::cli::Shell) -> String {
    COMPLETIONS
        .iter()
        .find(|(s, _)| *s == shell)
        .map_or_else(String::new, |(_, gz)| inflate(gz))
}

/// The text of one of the gzipped files above.
pub(crate) fn inflate(gz: &[u8]) -> String {
    let mut text = String::new();
    // build.rs wrote these bytes from UTF-8 text: they cannot fail to inflate.
    let _ = flate2::read::GzDecoder::new(gz).read_to_string(&mut text);
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Shell;

    #[test]
    fn every_shell_has_a_script_and_tend_1_comes_first() {
        for (shell, marker) in [
            (Shell::Bash, "complete -F _tend"),
            (Shell::Zsh, "#compdef tend"),
            (Shell::Fish, "complete -c tend"),
            (Shell::Powershell, "Register-ArgumentCompleter"),
        ] {
            assert!(completion(shell).contains(marker), "{shell:?}");
        }
        assert_eq!(MAN_PAGES[0].0, "tend.1");
        assert!(inflate(MAN_PAGES[0].1).contains(".TH tend 1"));
        assert!(MAN_PAGES.iter().any(|(name, _)| *name == "tend-install.1"));
        assert!(
            !MAN_PAGES
                .iter()
                .any(|(name, _)| name.starts_with("tend-help"))
        );
    }
}
