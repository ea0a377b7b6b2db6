//! GPU availability probe for `gpu: true` services (contract S8).
//!
//! Looks, under a root directory (`/` on a robot; `KRILL_GPU_ROOT` in tests), for:
//! * **NVIDIA** (desktop/server): `/dev/nvidiactl` and a `/dev/nvidia<N>` device; when
//!   the root is `/` and `nvidia-smi` is installed, `nvidia-smi -L` must also succeed
//!   (device nodes without a working driver are not a usable GPU).
//! * **Jetson / Tegra**: `/etc/nv_tegra_release` and a GPU node, `/dev/nvhost-ctrl-gpu`
//!   or `/dev/nvgpu/igpu0/ctrl`.
//! * **AMD** (ROCm): `/dev/kfd` and a render node `/dev/dri/renderD<N>`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A GPU that was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// `nvidia`, `tegra` or `amd`.
    pub vendor: &'static str,
    /// The device node that proved it.
    pub device: PathBuf,
}

/// The root to probe: `KRILL_GPU_ROOT` if set, else `/`.
pub fn root() -> PathBuf {
    std::env::var_os("KRILL_GPU_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn first_numbered(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix(prefix))
                .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    v.sort();
    v.into_iter().next()
}

/// Probes `root`. On failure the error says everything that was looked for.
pub fn probe(root: &Path) -> Result<Found, String> {
    let r = |p: &str| root.join(p.trim_start_matches('/'));
    let mut looked = Vec::new();

    // NVIDIA
    match (
        r("/dev/nvidiactl").exists(),
        first_numbered(&r("/dev"), "nvidia"),
    ) {
        (true, Some(dev)) => {
            if root == Path::new("/") {
                if let Ok(out) = Command::new("nvidia-smi").arg("-L").output() {
                    if !out.status.success() {
                        looked.push(format!(
                            "NVIDIA: {} present but `nvidia-smi -L` failed: {}",
                            dev.display(),
                            String::from_utf8_lossy(&out.stderr).trim()
                        ));
                        return Err(failure(looked));
                    }
                }
            }
            return Ok(Found {
                vendor: "nvidia",
                device: dev,
            });
        }
        _ => looked.push("NVIDIA (/dev/nvidiactl and /dev/nvidia<N>)".to_owned()),
    }
    // Jetson / Tegra
    if r("/etc/nv_tegra_release").exists() {
        for dev in ["/dev/nvhost-ctrl-gpu", "/dev/nvgpu/igpu0/ctrl"] {
            if r(dev).exists() {
                return Ok(Found {
                    vendor: "tegra",
                    device: r(dev),
                });
            }
        }
    }
    looked.push(
        "Jetson/Tegra (/etc/nv_tegra_release with /dev/nvhost-ctrl-gpu or /dev/nvgpu/igpu0/ctrl)"
            .to_owned(),
    );
    // AMD
    if r("/dev/kfd").exists() {
        if let Some(dev) = first_numbered(&r("/dev/dri"), "renderD") {
            return Ok(Found {
                vendor: "amd",
                device: dev,
            });
        }
    }
    looked.push("AMD ROCm (/dev/kfd with /dev/dri/renderD<N>)".to_owned());
    Err(failure(looked))
}

fn failure(looked: Vec<String>) -> String {
    format!("no usable GPU: looked for {}", looked.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for f in files {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        t
    }

    #[test]
    fn absent_says_what_was_looked_for() {
        let t = tree(&["dev/null", "dev/nvidia-modeset"]);
        let e = probe(t.path()).unwrap_err();
        assert!(
            e.starts_with("no usable GPU: looked for NVIDIA (/dev/nvidiactl"),
            "{e}"
        );
        assert!(
            e.contains("Jetson/Tegra") && e.contains("AMD ROCm (/dev/kfd"),
            "{e}"
        );
    }

    #[test]
    fn finds_each_vendor() {
        let t = tree(&["dev/nvidiactl", "dev/nvidia0"]);
        assert_eq!(probe(t.path()).unwrap().vendor, "nvidia");
        let t = tree(&["etc/nv_tegra_release", "dev/nvhost-ctrl-gpu"]);
        assert_eq!(probe(t.path()).unwrap().vendor, "tegra");
        let t = tree(&["dev/kfd", "dev/dri/renderD128"]);
        assert_eq!(probe(t.path()).unwrap().vendor, "amd");
    }

    #[test]
    fn half_a_gpu_is_no_gpu() {
        for files in [
            &["dev/nvidiactl"][..],
            &["dev/nvidia0"],
            &["dev/kfd"],
            &["etc/nv_tegra_release"],
            &["dev/dri/renderD128"],
        ] {
            assert!(probe(tree(files).path()).is_err(), "{files:?}");
        }
    }
}
