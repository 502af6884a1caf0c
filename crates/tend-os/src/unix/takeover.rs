//! systemd's take-over and put-back of a unit another tool (or an admin) wrote, for
//! `tend import --install --replace`: the plans are [`crate::takeover`]'s; this reads
//! what is there and carries them out through the same seams as every other verb.

use tend_core::ServiceName;

use super::UnixManager;
use crate::manager::{Error, Report, unsupported};
use crate::takeover::{self, Foreign, SavedFile};
use crate::{Backend, systemd};

/// What the foreign unit `name` is: its files (only those in the scope's unit directory:
/// a package's unit under /usr/lib is not tend's to remove), whether it runs and is
/// enabled.
pub(crate) fn record<T: UnixManager>(u: &T, name: &ServiceName) -> Result<Foreign, Error> {
    if T::BACKEND != Backend::Systemd {
        return Err(unsupported(T::BACKEND));
    }
    let m = u.m();
    m.require_root("import --replace")?;
    let argv = takeover::systemd_show_argv(name.as_str(), &m.scope);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = m.runner.run(&argv).map_err(|e| Error::Run {
        what: format!("cannot ask systemd about `{name}`{}", u.ask_hint()),
        source: Box::new(e),
    })?;
    let unit = takeover::parse_systemd_unit(&out.stdout);
    if !unit.loaded {
        return Err(Error::NotInstalled(name.to_string()));
    }
    if unit.masked {
        return Err(Error::Invalid(format!(
            "`{name}.service` is masked: there is nothing running to take over; unmask it first, or install tend's without --replace"
        )));
    }
    let layout = u.layout(name);
    let unit_dir = layout.definition.parent().unwrap_or(&layout.definition);
    let Some(fragment) = unit.fragment else {
        return Err(Error::Invalid(format!(
            "`{name}.service` has no unit file (systemd generated it): tend cannot put it back, so it does not take it over"
        )));
    };
    let mut files = Vec::new();
    for path in std::iter::once(fragment).chain(unit.dropins) {
        if !path.starts_with(unit_dir) {
            return Err(Error::Invalid(format!(
                "`{name}.service` uses `{}`, outside `{}`: tend takes over only units (and drop-ins) written there, not a package's; install tend's beside it (--install --name NEW, without --replace), then `systemctl disable --now {name}`",
                path.display(),
                unit_dir.display()
            )));
        }
        let Some(text) = m.read(&path)? else {
            return Err(Error::Invalid(format!(
                "`{}` (of `{name}.service`) is gone: run `systemctl daemon-reload` and try again",
                path.display()
            )));
        };
        if systemd::is_generated_by_tend(&text) {
            return Err(Error::Invalid(format!(
                "`{name}` is already tend's service (`{}`); there is nothing to take over: `tend install` updates it",
                path.display()
            )));
        }
        files.push(SavedFile { path, text });
    }
    Ok(Foreign {
        backend: T::BACKEND.name().to_owned(),
        name: name.to_string(),
        active: unit.active,
        enabled: unit.enabled,
        files,
        scm: None,
    })
}

/// Stops the foreign unit and frees its name ([`takeover::systemd_take_over`]).
pub(crate) fn take_over<T: UnixManager>(
    u: &T,
    foreign: &Foreign,
    into: &ServiceName,
    r: &mut Report,
) -> Result<(), Error> {
    if !foreign.is(T::BACKEND) {
        return Err(unsupported(T::BACKEND));
    }
    let m = u.m();
    m.require_root("import --replace")?;
    let steps = takeover::systemd_take_over(foreign, into.as_str(), &m.scope);
    m.apply(&format!("cannot take `{}` over", foreign.name), &steps)?;
    r.say(if into.as_str() == foreign.name {
        format!(
            "stopped `{0}.service`{1} and removed its unit file{2} (backed up)",
            foreign.name,
            if foreign.enabled { ", disabled it" } else { "" },
            if foreign.files.len() > 1 { "s" } else { "" }
        )
    } else {
        format!(
            "stopped `{}.service`{}",
            foreign.name,
            if foreign.enabled {
                " and disabled it"
            } else {
                ""
            }
        )
    });
    Ok(())
}

/// Removes tend's `into` (if it is there) and puts the foreign unit back
/// ([`takeover::systemd_put_back`]).
pub(crate) fn put_back<T: UnixManager>(
    u: &T,
    foreign: &Foreign,
    into: &ServiceName,
    r: &mut Report,
) -> Result<(), Error> {
    if !foreign.is(T::BACKEND) {
        return Err(unsupported(T::BACKEND));
    }
    let m = u.m();
    m.require_root("import --replace")?;
    let mut gone = Report::default();
    match u.uninstall_with(into, &mut gone) {
        Ok(()) => r.say(format!("removed tend's service `{into}`")),
        // Not there (the take-over failed before the install), or the foreign unit is
        // already back under the name (a put-back done again).
        Err(Error::NotInstalled(_) | Error::Invalid(_)) => {}
        Err(e) => return Err(e),
    }
    let steps = takeover::systemd_put_back(foreign, &m.scope);
    m.apply(&format!("cannot put `{}` back", foreign.name), &steps)?;
    r.say(format!(
        "put `{0}.service` back as it was ({1} file{2}){3}{4}",
        foreign.name,
        foreign.files.len(),
        if foreign.files.len() == 1 { "" } else { "s" },
        if foreign.enabled { ", enabled" } else { "" },
        if foreign.active { ", started" } else { "" }
    ));
    Ok(())
}
