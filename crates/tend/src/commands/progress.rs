//! How the verbs that change a running service print (`tend upgrade`, `rollback`, their
//! `--self` forms, `tend import --install --replace`): progress lines on stdout, or on
//! stderr with `--json`, where stdout carries one JSON document, the result.

use std::io::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Progress {
    pub(crate) json: bool,
    /// The column a step's detail starts in, after its name.
    pub(crate) width: usize,
}

impl Progress {
    /// One progress line.
    pub(crate) fn line(self, line: &str) {
        if self.json {
            let _ = writeln!(std::io::stderr(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
    }

    /// A step's line: `  <step> <detail>`, the details in one column.
    pub(crate) fn step_text(self, step: &str, detail: &str) -> String {
        format!("  {step:<w$} {detail}", w = self.width)
    }

    /// The result as a JSON document on stdout (with `--json`).
    pub(crate) fn document(self, doc: &impl Serialize) {
        let mut out = std::io::stdout().lock();
        let _ = serde_json::to_writer_pretty(&mut out, doc);
        let _ = writeln!(out);
    }

    /// `--check`: the document with `--json`, else its lines.
    pub(crate) fn check(self, lines: &[String], doc: &impl Serialize) {
        if self.json {
            self.document(doc);
        } else {
            for l in lines {
                self.line(l);
            }
        }
    }

    /// The end: with `--json` the document on stdout and the last line on stderr; else the
    /// last line on stdout.
    pub(crate) fn end(self, doc: &impl Serialize, line: &str) {
        if self.json {
            self.document(doc);
        }
        self.line(line);
    }
}
