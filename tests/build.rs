//! Builds every guest component the tests use (the examples and the test
//! fixtures) for wasm32-wasip2, and exposes their paths as `GUEST_<NAME>`
//! environment constants. Needs `rustup target add wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::Command;

const WORKSPACES: &[(&str, &[&str])] = &[("../examples/guests", &["echo", "chat"]), ("guests", &["fixture", "bare"])];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guests");
    for watched in ["wit", "guest-sdk/src", "guest-sdk/Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    for (workspace, guests) in WORKSPACES {
        let dir = manifest_dir.join(workspace);
        println!("cargo:rerun-if-changed={}", dir.join("Cargo.toml").display());
        for guest in *guests {
            for watched in ["src", "wit", "Cargo.toml"] {
                println!("cargo:rerun-if-changed={}", dir.join(guest).join(watched).display());
            }
        }
        build(&dir, &target_dir);
        for guest in *guests {
            let wasm = target_dir.join("wasm32-wasip2/release").join(format!("{guest}.wasm"));
            assert!(wasm.exists(), "guest {guest} was not built at {}", wasm.display());
            println!("cargo:rustc-env=GUEST_{}={}", guest.to_uppercase(), wasm.display());
        }
    }
}

fn build(workspace: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .status()
        .expect("cannot run cargo to build the guests");
    assert!(
        status.success(),
        "building the guests in {} failed; is the target installed? `rustup target add wasm32-wasip2`",
        workspace.display()
    );
}
