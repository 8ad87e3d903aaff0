//! Generates the C header of the FFI layer (`src/ffi`) with cbindgen into
//! `$OUT_DIR/wsbroker.h`. The committed copy, `include/wsbroker.h`, is compared with it by
//! `tests/ffi_header.rs`, which prints the command that refreshes it.

use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=src/ffi");
    println!("cargo:rerun-if-changed=src/broker/stats.rs");
    println!("cargo:rerun-if-changed=src/cluster/stats.rs");
    println!("cargo:rerun-if-changed=cbindgen.toml");
    println!("cargo:rerun-if-changed=build.rs");

    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
    let header = out_dir.join("wsbroker.h");

    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
        .unwrap_or_else(|e| panic!("reading cbindgen.toml: {e}"));
    let bindings = cbindgen::Builder::new()
        .with_config(config)
        .with_src(crate_dir.join("src/ffi/mod.rs"))
        // `wsb_stats` is the safe API's `Stats`, defined once there.
        .with_src(crate_dir.join("src/broker/stats.rs"))
        // `wsb_cluster_stats` likewise is `ClusterStats`.
        .with_src(crate_dir.join("src/cluster/stats.rs"))
        .generate()
        .unwrap_or_else(|e| panic!("generating the C header from src/ffi: {e}"));
    bindings.write_to_file(&header);

    println!(
        "cargo:rustc-env=WSBROKER_GENERATED_HEADER={}",
        header.display()
    );

    soname();
}

/// Linux: gives libwsbroker.so the SONAME `libwsbroker.so.<major>`, so that programs linked
/// against it record that name (DT_NEEDED) and `scripts/install.sh` can install the usual
/// `libwsbroker.so.X.Y.Z` ← `libwsbroker.so.X` ← `libwsbroker.so` chain. A program linked in the
/// build tree (`-Ltarget/release -lwsbroker`) then looks for `libwsbroker.so.<major>` there, so
/// the same symlink is made next to the library (the profile directory, three levels above
/// OUT_DIR: target[/<triple>]/<profile>).
fn soname() {
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let soname = format!(
        "libwsbroker.so.{}",
        env::var("CARGO_PKG_VERSION_MAJOR").expect("CARGO_PKG_VERSION_MAJOR")
    );
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,{soname}");
    #[cfg(unix)]
    {
        let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));
        if let Some(profile_dir) = out_dir.ancestors().nth(3) {
            let link = profile_dir.join(&soname);
            if std::fs::read_link(&link).is_err() {
                // Dangling until the cdylib is linked, right after this script.
                let _ = std::os::unix::fs::symlink("libwsbroker.so", &link);
            }
        }
    }
}
