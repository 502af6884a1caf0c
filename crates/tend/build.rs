//! Embeds the Windows resources (version info and application manifest) into tend.exe.
//! Nothing happens for other targets.

fn main() {
    println!("cargo:rerun-if-changed=windows/tend.rc");
    println!("cargo:rerun-if-changed=windows/tend.manifest");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("windows") {
        return;
    }
    let num = |key: &str| std::env::var(key).unwrap_or_else(|_| "0".into());
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let macros = [
        format!("VER_MAJOR={}", num("CARGO_PKG_VERSION_MAJOR")),
        format!("VER_MINOR={}", num("CARGO_PKG_VERSION_MINOR")),
        format!("VER_PATCH={}", num("CARGO_PKG_VERSION_PATCH")),
        format!("VER_STRING=\\\"{version}\\\""),
    ];
    // Only the `tend` binary gets them (not the test fixture).
    embed_resource::compile_for("windows/tend.rc", ["tend"], &macros)
        .manifest_required()
        .expect("embedding the Windows resources (needs a resource compiler: x86_64-w64-mingw32-windres)");
}
