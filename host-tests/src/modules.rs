//! Finding the wasm modules under test, building them when needed.
//!
//! [`module`] returns the path in an environment variable if set (e.g. `PROBE_WASM`,
//! `TOOLGATE_WASM`); otherwise it runs, once per test process,
//! `cargo build --release --target wasm32-wasip1 -p <package>` with its own target
//! directory (`<workspace>/target/host-tests-wasm`, or `HOST_TESTS_WASM_TARGET_DIR`), so
//! it never waits on the lock of the build running the tests; cargo rebuilds only what is
//! stale. The filter goes through `scripts/build-module` instead (cargo, then wasm-opt), so
//! the suite drives the module as it ships.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.to_path_buf(), Path::to_path_buf)
}

/// The target directory the wasm builds use.
pub fn wasm_target_dir() -> PathBuf {
    std::env::var_os("HOST_TESTS_WASM_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target").join("host-tests-wasm"))
}

/// The `.wasm` of `package` (artifact `artifact.wasm`), from `env_var` if set, else built.
pub fn module(package: &str, artifact: &str, env_var: &str) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env_var) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("{env_var}={} is not a file", path.display()))
        };
    }
    build(package, artifact)
}

/// Builds `package` for wasm32-wasip1 in release (once per process) and returns the module.
pub fn build(package: &str, artifact: &str) -> Result<PathBuf, String> {
    static BUILT: OnceLock<Mutex<HashMap<String, Result<PathBuf, String>>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    let mut built = built
        .lock()
        .map_err(|_| "a previous build panicked".to_string())?;
    if let Some(result) = built.get(package) {
        return result.clone();
    }
    let result = run_cargo(package, artifact);
    built.insert(package.to_string(), result.clone());
    result
}

fn run_cargo(package: &str, artifact: &str) -> Result<PathBuf, String> {
    let target_dir = wasm_target_dir();
    let file = format!("{artifact}.wasm");
    // The filter as it ships (cargo, then wasm-opt); any other module as cargo builds it.
    let (mut command, path) = if package == "toolgate-filter" {
        let mut c = Command::new("bash");
        c.arg(workspace_root().join("scripts").join("build-module"));
        (c, target_dir.join(file))
    } else {
        let mut c = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        c.args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            package,
        ]);
        let built = target_dir.join("wasm32-wasip1").join("release").join(file);
        (c, built)
    };
    let output = command
        .current_dir(workspace_root())
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot build {package}: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building {package} for wasm32-wasip1 failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    if path.is_file() {
        Ok(path)
    } else {
        Err(format!("built {package} but {} is missing", path.display()))
    }
}

/// The probe module of this crate's self-tests (`PROBE_WASM` overrides).
#[allow(clippy::panic)]
pub fn probe() -> PathBuf {
    module("host-tests-probe", "host_tests_probe", "PROBE_WASM").unwrap_or_else(|e| panic!("{e}"))
}

/// The Toolgate filter (`TOOLGATE_WASM` overrides).
#[allow(clippy::panic)]
pub fn toolgate() -> PathBuf {
    module("toolgate-filter", "toolgate", "TOOLGATE_WASM").unwrap_or_else(|e| panic!("{e}"))
}
