//! Builds every guest component the tests use (the examples and the test
//! fixtures) for wasm32-wasip2, and exposes their paths as `GUEST_<NAME>`
//! environment constants. Needs `rustup target add wasm32-wasip2`. Components
//! no compiler would produce (a core start function, say) are written by hand
//! in `guests/wat` and assembled here.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Guest workspaces and the packages each builds.
const WORKSPACES: &[(&str, &[&str])] = &[
    ("../examples/guests", &["echo", "chat", "raw-echo"]),
    ("guests", &["fixture", "bare", "bad-types", "counter", "counter-v3", "fanout"]),
];

/// The chat contract in other languages, each built by its own `build.sh`
/// (which installs its toolchain from the registry on first use):
/// (example, files it is built from, what it needs).
const OTHER_LANGUAGES: &[(&str, &[&str], &str)] = &[
    ("chat-py", &["app.py", "build.sh"], "python3 with venv and pip"),
    ("chat-js", &["app.js", "build.mjs", "build.sh", "package-lock.json"], "node and npm"),
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
    for (example, sources, needs) in OTHER_LANGUAGES {
        let out = target_dir.join(format!("{example}.wasm"));
        build_script(&root.join("examples").join(example), sources, needs, &out);
        export(example, &out);
    }
    let assembled = target_dir.join("wat");
    println!("cargo:rerun-if-changed={}", manifest_dir.join("guests/wat").display());
    std::fs::create_dir_all(&assembled).unwrap();
    for entry in std::fs::read_dir(manifest_dir.join("guests/wat")).unwrap() {
        let source = entry.unwrap().path();
        if source.extension().is_none_or(|ext| ext != "wat") {
            continue;
        }
        println!("cargo:rerun-if-changed={}", source.display());
        let name = source.file_stem().unwrap().to_string_lossy().into_owned();
        let wasm = wat::parse_file(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
        let out = assembled.join(format!("{name}.wasm"));
        std::fs::write(&out, wasm).unwrap();
        export(&name, &out);
    }
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

fn build_script(dir: &Path, sources: &[&str], needs: &str, out: &Path) {
    for source in sources {
        println!("cargo:rerun-if-changed={}", dir.join(source).display());
    }
    let status = Command::new("bash").arg(dir.join("build.sh")).arg(out).status().expect("cannot run bash");
    assert!(status.success(), "building {} failed (needs {needs})", dir.display());
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
