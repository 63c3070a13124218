//! Builds every guest component the tests use (the examples and the test
//! fixtures) for wasm32-wasip2, and exposes their paths as `GUEST_<NAME>`
//! environment constants. Needs `rustup target add wasm32-wasip2`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest workspaces and the packages each builds.
const WORKSPACES: &[(&str, &[&str])] = &[
    ("../examples/guests", &["echo", "chat", "raw-echo"]),
    ("guests", &["fixture", "bare", "bad-types", "counter", "counter-v3", "fanout"]),
];

/// Extra builds of one package with features: (package, features, name).
const VARIANTS: &[(&str, &str, &str)] =
    &[("counter", "", "counter-v1"), ("counter", "v2", "counter-v2"), ("counter", "big", "counter-big")];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    let target_dir =
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target")).join("guests");
    let release = target_dir.join("wasm32-wasip2/release");
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
        cargo_build(&dir, &target_dir, &[]);
        for guest in *guests {
            export(guest, &release.join(format!("{}.wasm", guest.replace('-', "_"))));
        }
    }
    // The Python build of the chat contract (componentize-py from PyPI).
    let chat_py = root.join("examples/chat-py");
    for watched in ["app.py", "build.sh"] {
        println!("cargo:rerun-if-changed={}", chat_py.join(watched).display());
    }
    let out = target_dir.join("chat-py.wasm");
    let status = Command::new("bash")
        .arg(chat_py.join("build.sh"))
        .arg(&out)
        .status()
        .expect("cannot run bash to build the Python chat");
    assert!(status.success(), "building examples/chat-py failed (needs python3 with venv and pip)");
    export("chat-py", &out);
    // The JavaScript build (componentize-js from npm).
    let chat_js = root.join("examples/chat-js");
    for watched in ["app.js", "build.mjs", "build.sh", "package-lock.json"] {
        println!("cargo:rerun-if-changed={}", chat_js.join(watched).display());
    }
    let out = target_dir.join("chat-js.wasm");
    let status = Command::new("bash")
        .arg(chat_js.join("build.sh"))
        .arg(&out)
        .status()
        .expect("cannot run bash to build the JavaScript chat");
    assert!(status.success(), "building examples/chat-js failed (needs node and npm)");
    export("chat-js", &out);
    let variants = target_dir.join("variants");
    std::fs::create_dir_all(&variants).unwrap();
    for (package, features, name) in VARIANTS {
        cargo_build(&manifest_dir.join("guests"), &target_dir, &["-p", package, "--features", features]);
        let copy = variants.join(format!("{name}.wasm"));
        std::fs::copy(release.join(format!("{package}.wasm")), &copy).unwrap();
        export(name, &copy);
    }
}

fn export(name: &str, wasm: &Path) {
    assert!(wasm.exists(), "guest {name} was not built at {}", wasm.display());
    println!("cargo:rustc-env=GUEST_{}={}", name.to_uppercase().replace('-', "_"), wasm.display());
}

fn cargo_build(workspace: &Path, target_dir: &Path, extra: &[&str]) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip2", "--manifest-path"])
        .arg(workspace.join("Cargo.toml"))
        .args(extra)
        .env("CARGO_TARGET_DIR", target_dir)
        // Not the outer build's flags or wrappers (`cargo clippy` sets one).
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .status()
        .expect("cannot run cargo to build the guests");
    assert!(
        status.success(),
        "building the guests in {} failed; is the target installed? `rustup target add wasm32-wasip2`",
        workspace.display()
    );
}
