//! Harness for end-to-end tests in a real systemd.
//!
//! Each [`Container`] is a Debian bookworm root (debootstrap'd once and cached in
//! `/var/cache/krill-e2e`, or `KRILL_E2E_CACHE`) mounted through an overlay, with
//! krill installed from its .deb (see [`deb`]), booted by `systemd-nspawn -b` so that
//! systemd 252 runs as its PID 1 with its own D-Bus system bus and journald. Tests
//! drive it with `nsenter` and read it through systemd's own answers.
//!
//! Rules kept here:
//! * no bare sleeps: [`Container::wait_for`] polls a condition with a deadline;
//! * containers are always stopped and unmounted, even when a test panics, and on
//!   failure the container's journal is printed;
//! * prerequisites missing: a failure under `CI`, a loud skip otherwise.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn cache_dir() -> PathBuf {
    std::env::var_os("KRILL_E2E_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/krill-e2e"))
}

/// The target the shipped binaries are built for: glibc 2.31 through `cargo zigbuild
/// --target x86_64-unknown-linux-gnu.2.31`, which writes to this triple's directory.
pub const TRIPLE: &str = "x86_64-unknown-linux-gnu";

/// Directory of the binaries under test (`KRILL_E2E_BINDIR`, default
/// `target/x86_64-unknown-linux-gnu/release`, where test.sh builds them).
pub fn bindir() -> PathBuf {
    std::env::var_os("KRILL_E2E_BINDIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target").join(TRIPLE).join("release"))
}

/// The .deb under test (`KRILL_E2E_DEB`, default the one `cargo deb -p krill-ctl
/// --no-build --target x86_64-unknown-linux-gnu` writes). Every container gets krill
/// from it, so what is tested is what users install.
pub fn deb() -> PathBuf {
    if let Some(p) = std::env::var_os("KRILL_E2E_DEB") {
        return PathBuf::from(p);
    }
    let dir = repo().join("target").join(TRIPLE).join("debian");
    let version = env!("CARGO_PKG_VERSION");
    dir.join(format!("krill_{version}-1_amd64.deb"))
}

fn have(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {cmd}"))
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Why e2e tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    if unsafe { libc::geteuid() } != 0 {
        return Some("e2e tests need root (systemd-nspawn, overlay mounts)".into());
    }
    for c in ["systemd-nspawn", "nsenter", "mount"] {
        if !have(c) {
            return Some(format!(
                "{c} is not installed (apt-get install systemd-container util-linux)"
            ));
        }
    }
    if !cache_dir()
        .join(suite())
        .join("usr/lib/systemd/systemd")
        .exists()
        && !have("debootstrap")
    {
        return Some("debootstrap is not installed and no cached rootfs exists".into());
    }
    for b in ["krill-gen", "krill-ctl", "krill-supervisor"] {
        if !bindir().join(b).exists() {
            return Some(format!(
                "{} is not built: run `cargo build --release --workspace --bins` first",
                bindir().join(b).display()
            ));
        }
    }
    None
}

/// Serialises e2e tests within a test binary (2 cores; timing figures stay honest),
/// and decides whether they can run. Returns `None` to skip (never under `CI`).
pub fn guard() -> Option<MutexGuard<'static, ()>> {
    static LOCK: Mutex<()> = Mutex::new(());
    if let Some(why) = missing_prerequisite() {
        if std::env::var_os("CI").is_some() {
            panic!("e2e prerequisite missing under CI: {why}");
        }
        eprintln!("\n*** SKIPPING e2e test: {why} ***\n");
        return None;
    }
    check_fresh_binaries();
    Some(LOCK.lock().unwrap_or_else(|e| e.into_inner()))
}

/// Fails when a binary is older than the sources it is built from: testing a stale
/// binary proves nothing. A package named by `KRILL_E2E_DEB` is tested as given (a
/// release candidate, or a copy taken so that sources can change during a run).
fn check_fresh_binaries() {
    if std::env::var_os("KRILL_E2E_DEB").is_some() {
        return;
    }
    fn newest(dir: &Path) -> std::time::SystemTime {
        let mut t = std::time::UNIX_EPOCH;
        if let Ok(rd) = std::fs::read_dir(dir) {
            for e in rd.flatten() {
                let p = e.path();
                let m = if p.is_dir() {
                    newest(&p)
                } else {
                    e.metadata().and_then(|m| m.modified()).unwrap_or(t)
                };
                t = t.max(m);
            }
        }
        t
    }
    for (bin, srcs) in [
        (
            "krill-gen",
            &["krill-gen/src", "krill/src", "krill/templates"][..],
        ),
        ("krill-ctl", &["krill-ctl/src", "krill/src"][..]),
        (
            "krill-supervisor",
            &["krill-supervisor/src", "krill/src"][..],
        ),
    ] {
        let built = std::fs::metadata(bindir().join(bin))
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}: run ./test.sh (or see its build steps)",
                    bindir().join(bin).display()
                )
            });
        let packaged = std::fs::metadata(deb())
            .and_then(|m| m.modified())
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e}: run ./test.sh (or see its build steps)",
                    deb().display()
                )
            });
        assert!(
            built <= packaged,
            "{} is older than {bin}: rebuild it with `cargo deb -p krill-ctl --no-build --target {TRIPLE}`",
            deb().display()
        );
        for s in srcs {
            assert!(
                newest(&repo().join(s)) <= built,
                "{bin} is older than {s}: run ./test.sh, or its build steps, before the e2e tests (or set KRILL_E2E_BINDIR)"
            );
        }
    }
}

/// Upstream Krill's unmodified SDKs and examples, which compatibility tests run
/// against (never copied into this repository): `KRILL_UPSTREAM`, else
/// `../shared/upstream` beside the checkout, else `/work/shared/upstream`. `None`
/// (the caller skips, saying so) when none exists.
pub fn upstream() -> Option<PathBuf> {
    let found = std::env::var_os("KRILL_UPSTREAM")
        .map(PathBuf::from)
        .into_iter()
        .chain([
            repo().join("../shared/upstream"),
            PathBuf::from("/work/shared/upstream"),
        ])
        .find(|p| p.join("sdk-python").is_dir());
    if found.is_none() {
        eprintln!("skipped: upstream Krill not found (set KRILL_UPSTREAM)");
    }
    found
}

/// Debian release of the container: `KRILL_E2E_SUITE`, default bookworm (systemd
/// 252); trixie brings systemd 257.
pub fn suite() -> String {
    std::env::var("KRILL_E2E_SUITE").unwrap_or_else(|_| "bookworm".into())
}

/// What a container's root holds besides systemd and krill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The suite's minimal root.
    Plain,
    /// Plus Debian's docker.io engine (`scripts/rootfs.sh SUITE docker`), and the
    /// syscalls and capabilities runc needs inside systemd-nspawn.
    Docker,
    /// Plus tmux, sshd and iproute2 (`scripts/rootfs.sh SUITE ops`), and a veth link
    /// to the host with an address of its own ([`Container::ip`]): a robot an
    /// operator reaches over SSH.
    Ops,
    /// Plus dbus-user-session and libpam-systemd (`scripts/rootfs.sh SUITE user`):
    /// lingering users get their own `systemd --user` and session bus.
    User,
}

/// The cached rootfs of [`suite`] in `flavor`, built on first use by
/// `scripts/rootfs.sh` (the one debootstrap command line, shared with `./demo.sh` and
/// safe to run from several test binaries at once).
fn rootfs(flavor: Flavor) -> PathBuf {
    static ROOTS: Mutex<Vec<(Flavor, PathBuf)>> = Mutex::new(Vec::new());
    let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = roots.iter().find(|(f, _)| *f == flavor) {
        return p.clone();
    }
    let mut cmd = Command::new(repo().join("scripts/rootfs.sh"));
    cmd.arg(suite());
    match flavor {
        Flavor::Plain => {}
        Flavor::Docker => {
            cmd.arg("docker");
        }
        Flavor::Ops => {
            cmd.arg("ops");
        }
        Flavor::User => {
            cmd.arg("user");
        }
    }
    let out = cmd
        .env("KRILL_E2E_CACHE", cache_dir())
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/rootfs.sh");
    assert!(out.status.success(), "scripts/rootfs.sh {} failed", suite());
    let p = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    roots.push((flavor, p.clone()));
    p
}

/// A cgroup of its own for one container, below the test's cgroup in the unified
/// hierarchy. Without it, `systemd-nspawn` (with no systemd on the host to give it a
/// scope) roots every container at the same `<own cgroup>/payload`, so parallel
/// containers, and services orphaned by a killed one, share one `krill.slice`.
fn container_cgroup(name: &str) -> PathBuf {
    let unified = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup")
    } else {
        PathBuf::from("/sys/fs/cgroup/unified")
    };
    let own = std::fs::read_to_string("/proc/self/cgroup")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("0::").map(str::to_owned))
        .unwrap_or_default();
    let dir = unified
        .join(own.trim_start_matches('/'))
        .join(format!("krill-e2e-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    dir
}

/// Kills whatever is left in `dir` (a container whose systemd was killed leaves its
/// services behind) and removes the cgroup tree.
fn remove_cgroup(dir: &Path) {
    let _ = std::fs::write(dir.join("cgroup.kill"), "1");
    fn rmdirs(d: &Path) {
        if let Ok(rd) = std::fs::read_dir(d) {
            for e in rd.flatten() {
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    rmdirs(&e.path());
                }
            }
        }
        // Emptied by cgroup.kill asynchronously: retry briefly.
        for _ in 0..50 {
            if std::fs::remove_dir(d).is_ok() || !d.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    rmdirs(dir);
}

/// A booted container.
pub struct Container {
    /// The container's own cgroup ([`container_cgroup`]).
    cgroup: PathBuf,
    nspawn: Option<Child>,
    /// The container's PID 1 (systemd), as seen from the host.
    pub pid1: u32,
    work: PathBuf,
    /// The container's root, as seen from the host.
    pub root: PathBuf,
    name: String,
    flavor: Flavor,
    /// [`Flavor::Ops`]: the host's end of the veth link, and the /30 it is on.
    link: Option<(String, u32)>,
}

/// A veth link's host-side name (at most 15 bytes) and a /30 of 10.77.0.0/16, unique
/// per process and container.
fn new_link() -> (String, u32) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let pid = std::process::id();
    (
        format!("ke{:05}{n:02}", pid % 100_000),
        (pid.wrapping_mul(7919).wrapping_add(n)) % 16_384,
    )
}

fn link_ip(slot: u32, host_end: bool) -> String {
    let base = slot * 4 + if host_end { 1 } else { 2 };
    format!("10.77.{}.{}", base >> 8, base & 0xff)
}

fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// CLOCK_MONOTONIC in µs; the container shares the host's clock, so this compares
/// with systemd's `*TimestampMonotonic` properties.
pub fn now_us() -> u64 {
    monotonic_us()
}

impl Container {
    /// Boots a fresh container with krill installed.
    pub fn boot(name: &str) -> Container {
        Container::boot_flavor(name, Flavor::Plain)
    }

    /// Boots a fresh container with krill installed, from a root of `flavor`.
    pub fn boot_flavor(name: &str, flavor: Flavor) -> Container {
        let base = rootfs(flavor);
        let work = std::env::temp_dir().join(format!("krill-e2e-{}-{name}", std::process::id()));
        let _ = Command::new("umount")
            .arg(work.join("root"))
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&work);
        for d in ["upper", "work", "root"] {
            std::fs::create_dir_all(work.join(d)).unwrap();
        }
        let root = work.join("root");
        let st = Command::new("mount")
            .args(["-t", "overlay", "overlay", "-o"])
            .arg(format!(
                "lowerdir={},upperdir={},workdir={}",
                base.display(),
                work.join("upper").display(),
                work.join("work").display()
            ))
            .arg(&root)
            .status()
            .unwrap();
        assert!(st.success(), "overlay mount failed");
        // Install the .deb as an image build would: dpkg in a chroot of the stopped
        // root (postinst enables the supervisor; it starts at boot).
        std::fs::copy(deb(), root.join("tmp/krill.deb")).unwrap();
        let out = Command::new("chroot")
            .arg(&root)
            .args(["dpkg", "-i", "/tmp/krill.deb"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "dpkg -i krill.deb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut c = Container {
            cgroup: container_cgroup(name),
            nspawn: None,
            pid1: 0,
            work,
            root,
            name: name.to_owned(),
            flavor,
            link: (flavor == Flavor::Ops).then(new_link),
        };
        c.start();
        c
    }

    fn start(&mut self) {
        let log = std::fs::File::create(self.work.join("nspawn.log")).unwrap();
        // Into its own cgroup before nspawn runs (see container_cgroup); `exec` keeps
        // the PID.
        let child = Command::new("/bin/sh")
            .args(["-c", "echo $$ > \"$0\" && exec \"$@\""])
            .arg(self.cgroup.join("cgroup.procs"))
            .arg("systemd-nspawn")
            .arg("-D")
            .arg(&self.root)
            .args(["-b", "--register=no", "--keep-unit", "--console=passive"])
            // Its own network namespace: services that bind ports (the demo's 8080)
            // cannot collide with the host or with parallel containers.
            .arg("--private-network")
            .arg(format!("--machine=krill-{}", self.name))
            // runc joins a session keyring and attaches a device-cgroup BPF program;
            // nspawn's default seccomp filter and capability set forbid both.
            .args(match self.flavor {
                Flavor::Plain | Flavor::Ops | Flavor::User => &[][..],
                Flavor::Docker => {
                    &["--system-call-filter=@keyring bpf", "--capability=CAP_BPF"][..]
                }
            })
            .args(
                self.link
                    .iter()
                    .map(|(dev, _)| format!("--network-veth-extra={dev}:eth1")),
            )
            .env("SYSTEMD_NSPAWN_UNIFIED_HIERARCHY", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("spawn systemd-nspawn");
        let npid = child.id();
        self.nspawn = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        self.pid1 = loop {
            if let Some(p) = child_named(npid, "systemd") {
                break p;
            }
            assert!(
                Instant::now() < deadline,
                "container's systemd did not appear"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = self.sh("systemctl is-system-running");
            let t = String::from_utf8_lossy(&s.stdout);
            if t.starts_with("running") || t.starts_with("degraded") {
                break;
            }
            // A boot that never settles says which jobs it is stuck on.
            assert!(
                Instant::now() < deadline,
                "the container's boot did not finish in 60 s ({}); jobs:\n{}",
                t.trim(),
                text(&self.sh("systemctl list-jobs --no-pager; systemctl --failed --no-pager"))
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some((dev, slot)) = self.link.clone() {
            let host = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "ip addr add {}/30 dev {dev} && ip link set {dev} up",
                    link_ip(slot, true)
                ))
                .output()
                .expect("run ip");
            assert!(host.status.success(), "host end of {dev}: {}", text(&host));
            self.ok(&format!(
                "ip addr add {}/30 dev eth1 && ip link set eth1 up",
                link_ip(slot, false)
            ));
        }
    }

    /// The container's address on its link to the host ([`Flavor::Ops`] only).
    pub fn ip(&self) -> String {
        let (_, slot) = self
            .link
            .as_ref()
            .expect("only Flavor::Ops containers have a link");
        link_ip(*slot, false)
    }

    /// Reboots the container: systemd shuts down, nspawn exits, and a new nspawn boots
    /// the same (persistent) root.
    pub fn reboot(&mut self) {
        let _ = self.sh("systemctl reboot");
        if let Some(mut c) = self.nspawn.take() {
            let deadline = Instant::now() + Duration::from_secs(60);
            while c.try_wait().ok().flatten().is_none() {
                assert!(Instant::now() < deadline, "container did not shut down");
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.start();
    }

    /// Runs a shell command inside the container (all namespaces of PID 1).
    pub fn sh(&self, cmd: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid1.to_string(), "-a", "/bin/sh", "-c", cmd])
            .output()
            .expect("run nsenter")
    }

    /// The major version of the container's systemd (`systemctl --version`).
    pub fn systemd_version(&self) -> u32 {
        let v = self.ok("systemctl --version");
        v.split_whitespace()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("cannot read the systemd version from {v:?}"))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, cmd: &str) -> String {
        let o = self.sh(cmd);
        assert!(
            o.status.success(),
            "`{cmd}` failed ({}):\nstdout: {}\nstderr: {}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs `krill status ARGS`, which must answer 0 (all running) or 3 (something is
    /// not running or not healthy); returns its stdout.
    pub fn status(&self, args: &str) -> String {
        let o = self.sh(&format!("krill status {args}"));
        assert!(
            matches!(o.status.code(), Some(0 | 3)),
            "`krill status {args}` failed ({}):\n{}",
            o.status,
            text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// One property of a unit (`systemctl show -p`), parsed as key=value.
    pub fn prop(&self, unit: &str, prop: &str) -> String {
        let out = self.ok(&format!("systemctl show -p {prop} -- '{unit}'"));
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{prop}=")))
            .unwrap_or("")
            .to_owned()
    }

    /// Numeric property (0 when empty).
    pub fn num(&self, unit: &str, prop: &str) -> u64 {
        self.prop(unit, prop).parse().unwrap_or(0)
    }

    /// `ActiveState/SubState`.
    pub fn state(&self, unit: &str) -> String {
        format!(
            "{}/{}",
            self.prop(unit, "ActiveState"),
            self.prop(unit, "SubState")
        )
    }

    /// A path inside the running container, as seen from the host (through
    /// `/proc/PID1/root`, so that the container's tmpfs mounts such as /run count).
    pub fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root", self.pid1)).join(p.trim_start_matches('/'))
    }

    /// Writes a file inside the running container.
    pub fn write(&self, path: &str, contents: &str) {
        let p = self.path(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, contents).unwrap();
    }

    /// Polls `cond` every 10 ms until it holds; panics with `what` after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond() {
                return;
            }
            if Instant::now() > deadline {
                panic!("timed out after {timeout:?} waiting for: {what}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// An observation window: lets `d` pass so that what must *not* happen (a
    /// restart, a kill) would have happened; the caller's assertions follow. Never
    /// used to wait for something that should happen (use [`Container::wait_for`]).
    pub fn observe_for(&self, d: Duration) {
        std::thread::sleep(d);
    }

    /// Waits until `unit` is in `state` (`active/running`, `failed/failed`, ...).
    pub fn wait_state(&self, unit: &str, state: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let last = self.state(unit);
            if last == state {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {unit} to be {state}; it is {last}"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Processes in a cgroup subtree (path relative to the cgroup root), recursively.
    pub fn cgroup_pids(&self, rel: &str) -> Vec<u32> {
        fn walk(dir: &Path, out: &mut Vec<u32>) {
            if let Ok(s) = std::fs::read_to_string(dir.join("cgroup.procs")) {
                out.extend(s.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
            }
            if let Ok(rd) = std::fs::read_dir(dir) {
                for e in rd.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
        }
        let mut v = vec![];
        walk(
            &PathBuf::from(format!("/proc/{}/root/sys/fs/cgroup/{rel}", self.pid1)),
            &mut v,
        );
        v
    }

    /// Whether a PID (in the container's PID namespace) is alive.
    pub fn alive(&self, pid: u32) -> bool {
        self.sh(&format!("kill -0 {pid}")).status.success()
    }

    /// One of krill-supervisor's counters (its `Stats` property on D-Bus:
    /// `accepted`, `relayed`, ...).
    pub fn sup_stat(&self, key: &str) -> u64 {
        let out = self.ok(
            "busctl --json=short get-property org.krill.Supervisor1 /org/krill/Supervisor1 org.krill.Supervisor1 Stats",
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        let stats: serde_json::Value = serde_json::from_str(v["data"].as_str().unwrap()).unwrap();
        stats[key]
            .as_u64()
            .unwrap_or_else(|| panic!("no counter {key} in {stats}"))
    }

    /// Waits until the journal (`journalctl ARGS`) holds `needle`: journald may
    /// write an entry after the state change it reports is already visible.
    pub fn wait_journal(&self, args: &str, needle: &str, timeout: Duration) {
        self.wait_for(
            &format!("{needle:?} in `journalctl {args}`"),
            timeout,
            || self.journal(args).contains(needle),
        );
    }

    /// The container's journal (for failure reports and log assertions).
    pub fn journal(&self, args: &str) -> String {
        String::from_utf8_lossy(&self.sh(&format!("journalctl --no-pager -q {args}")).stdout)
            .into_owned()
    }

    /// Installs the labelled stand-ins for `pixi`, `ros2` and `docker` (tests/standins)
    /// in /usr/local/bin: those tools cannot be installed on the test machines.
    pub fn install_standins(&self) {
        for tool in ["pixi", "ros2", "docker"] {
            let src = repo().join("tests/standins").join(tool);
            std::fs::copy(&src, self.path(&format!("/usr/local/bin/{tool}"))).unwrap();
        }
    }

    /// Installs `recipe` as `/root/<ws>.yaml` with `krill install FLAGS`; fails the
    /// test with krill's output if that fails.
    pub fn install_ok(&self, ws: &str, recipe: &str, flags: &str) {
        let out = self.install(&format!("/root/{ws}.yaml"), recipe, flags);
        assert!(
            out.status.success(),
            "krill install failed:\n{}",
            text(&out)
        );
    }

    /// Installs the SDK heartbeat services at `/usr/local/bin`: `beater` (C++ SDK,
    /// tests/images/beater.cpp, built static with the host's g++) and
    /// `krill-sdk-beat` (the Rust SDK's async client, built for glibc 2.31 with the
    /// shipped binaries). Both heartbeat as `$KRILL_SERVICE` and are silenced by
    /// `/run/stop-$KRILL_SERVICE`.
    pub fn install_sdk_beaters(&self) {
        build_cpp_beater(&self.path("/usr/local/bin/beater"));
        std::fs::copy(
            bindir().join("krill-sdk-beat"),
            self.path("/usr/local/bin/krill-sdk-beat"),
        )
        .expect("krill-sdk-beat is built with the shipped binaries (scripts/build-deb.sh)");
    }

    /// Installs and starts workspace `ws` of `n` services that each send a heartbeat
    /// every 100 ms through the Python SDK (timeout 2 s), and waits until all are
    /// healthy: the benchmarks' standard load (50 × 10 Hz).
    pub fn install_beating(&self, ws: &str, n: usize) {
        self.write(
            "/opt/hb10.py",
            "import time\nfrom krill import KrillClient\nc = KrillClient()\nwhile True:\n    c.heartbeat()\n    time.sleep(0.1)\n",
        );
        let mut recipe = format!("version: \"1\"\nname: {ws}\nservices:\n");
        for i in 0..n {
            recipe.push_str(&format!("  s{i}:\n    execute: {{type: shell, command: python3 /opt/hb10.py}}\n    health_check: {{type: heartbeat, timeout: 2s}}\n"));
        }
        self.install_ok(ws, &recipe, "--now");
        self.wait_for(&format!("{n} healthy"), Duration::from_secs(60), || {
            self.status_json(ws)["workspaces"][0]["services"]
                .as_array()
                .is_some_and(|a| a.iter().filter(|s| s["health"] == "healthy").count() == n)
        });
    }

    /// `krill status WS --json`, parsed.
    pub fn status_json(&self, ws: &str) -> serde_json::Value {
        let out = self.status(&format!("{ws} --json"));
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("status --json: {e}: {out}"))
    }

    /// Service `svc`'s entry in [`Container::status_json`] (`Null` when absent).
    pub fn service_status(&self, ws: &str, svc: &str) -> serde_json::Value {
        self.status_json(ws)["workspaces"][0]["services"]
            .as_array()
            .and_then(|a| a.iter().find(|s| s["service"] == svc).cloned())
            .unwrap_or_default()
    }

    /// Sends SIGTERM (a stray `kill`) to `unit`'s main process; returns its pid.
    pub fn kill_main(&self, unit: &str) -> u64 {
        let pid = self.num(unit, "MainPID");
        assert!(pid > 0, "{unit} has no MainPID");
        self.ok(&format!("kill {pid}"));
        pid
    }

    /// Installs a recipe from text with `krill install` and returns its output.
    pub fn install(&self, path: &str, recipe: &str, flags: &str) -> Output {
        self.write(path, recipe);
        self.sh(&format!("krill install {path} {flags}"))
    }
}

/// Builds tests/images/beater.cpp (a heartbeat service on the C++ SDK) static, to
/// `dest`: it runs in every test container and as a docker image's only file.
pub fn build_cpp_beater(dest: &Path) {
    if let Some(d) = dest.parent() {
        std::fs::create_dir_all(d).unwrap();
    }
    let out = Command::new("g++")
        .args(["-static", "-O2", "-std=c++17", "-I"])
        .arg(repo().join("sdk/cpp"))
        .arg(repo().join("tests/images/beater.cpp"))
        .arg("-o")
        .arg(dest)
        .output()
        .expect("run g++");
    assert!(out.status.success(), "{}", text(&out));
}

/// stdout and stderr of a command, for failure messages.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn child_named(ppid: u32, comm: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid_field = stat[close + 2..]
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if name == comm && ppid_field == Some(ppid) {
            return Some(pid);
        }
    }
    None
}

impl Drop for Container {
    fn drop(&mut self) {
        if std::thread::panicking() && self.pid1 != 0 {
            eprintln!(
                "---- journal of container {} (last 150 lines) ----\n{}",
                self.name,
                self.journal("-n 150")
            );
        }
        if let Some(mut c) = self.nspawn.take() {
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        remove_cgroup(&self.cgroup);
        // Never delete a root while its container runs: nspawn has exited here.
        let st = Command::new("umount").arg(&self.root).status();
        if st.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_dir_all(&self.work);
        }
    }
}
