//! `cargo bench -p krill-gen`: wall time of the generator process for a 1000-service
//! recipe (read, validate, plan, render, write every unit), beside its floor: a
//! process that only writes the same files, interleaved. Target: < 50 ms.
//!
//! The recipe has 10 layers of 100 services; each service depends on two of the
//! layer below (one `started`, one `healthy`) and has a health check, so gates and
//! failure handlers are generated too: about 3000 unit files.

use std::time::{Duration, Instant};

fn recipe() -> String {
    let mut r =
        String::from("version: \"1\"\nname: big\nenv:\n  ROS_DOMAIN_ID: \"42\"\nservices:\n");
    for layer in 0..10 {
        for i in 0..100 {
            r.push_str(&format!("  s{layer}-{i}:\n    execute: {{type: shell, command: /usr/bin/robot-node --id {layer}-{i} --rate 10}}\n"));
            r.push_str("    health_check: {type: heartbeat, timeout: 2s}\n");
            r.push_str(
                "    policy: {restart: on-failure, max_restarts: 3, restart_delay: 500ms}\n",
            );
            if layer > 0 {
                r.push_str(&format!(
                    "    dependencies:\n      - s{}-{i}\n      - s{}-{}: healthy\n",
                    layer - 1,
                    layer - 1,
                    (i + 1) % 100
                ));
            }
        }
    }
    r
}

/// The floor: a process that writes the same unit files and nothing else (what a C
/// program with the files built in would do): one read of an archive of them
/// (name, NUL, length, NUL, bytes…), then one create-and-write per file.
fn floor(archive: &std::path::Path, out: &std::path::Path) {
    let data = std::fs::read(archive).unwrap();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let name_end = rest.iter().position(|b| *b == 0).unwrap();
        let name = std::str::from_utf8(&rest[..name_end]).unwrap();
        rest = &rest[name_end + 1..];
        let len_end = rest.iter().position(|b| *b == 0).unwrap();
        let len: usize = std::str::from_utf8(&rest[..len_end])
            .unwrap()
            .parse()
            .unwrap();
        rest = &rest[len_end + 1..];
        std::fs::write(out.join(name), &rest[..len]).unwrap();
        rest = &rest[len..];
    }
}

/// [`floor`]'s archive of every file in `dir`.
fn archive_of(dir: &std::path::Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if !e.file_type().unwrap().is_file() {
            continue;
        }
        let bytes = std::fs::read(e.path()).unwrap();
        out.extend_from_slice(e.file_name().to_string_lossy().as_bytes());
        out.push(0);
        out.extend_from_slice(bytes.len().to_string().as_bytes());
        out.push(0);
        out.extend_from_slice(&bytes);
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--floor") {
        floor(args[i + 1].as_ref(), args[i + 2].as_ref());
        return;
    }
    // `cargo test --all-targets` runs bench targets too (without `--bench`); a
    // benchmark only runs under `cargo bench`.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    // systemd's generator directories are on tmpfs (/run); so is /dev/shm.
    let dir = tempfile::tempdir_in("/dev/shm").unwrap();
    let recipes = dir.path().join("recipes");
    std::fs::create_dir_all(&recipes).unwrap();
    std::fs::write(recipes.join("big.yaml"), recipe()).unwrap();
    std::env::set_var("KRILL_RECIPE_PATH", &recipes);
    std::env::set_var("KRILL_ENABLED_DIR", dir.path().join("enabled"));
    let mut times: Vec<Duration> = Vec::new();
    let mut floor_times: Vec<Duration> = Vec::new();
    let archive = dir.path().join("floor.archive");
    let mut units = 0;
    for i in 0..25 {
        let out = dir.path().join(format!("out{i}"));
        std::fs::create_dir_all(&out).unwrap();
        if i > 0 {
            // The floor, side by side: the same files, written by a process that
            // does nothing else.
            let fout = dir.path().join(format!("floor{i}"));
            std::fs::create_dir_all(&fout).unwrap();
            let t = Instant::now();
            let st = std::process::Command::new(std::env::current_exe().unwrap())
                .arg("--floor")
                .arg(&archive)
                .arg(&fout)
                .status()
                .unwrap();
            floor_times.push(t.elapsed());
            assert!(st.success());
            std::fs::remove_dir_all(&fout).unwrap();
        }
        let t = Instant::now();
        // The generator as systemd runs it: a process, so its start-up counts.
        let st = std::process::Command::new(env!("CARGO_BIN_EXE_krill-gen"))
            .arg(&out)
            .status()
            .unwrap();
        times.push(t.elapsed());
        assert!(st.success());
        units = std::fs::read_dir(&out).unwrap().count();
        if i == 0 {
            std::fs::write(&archive, archive_of(&out)).unwrap();
            let text = std::fs::read_to_string(recipes.join("big.yaml")).unwrap();
            let t = Instant::now();
            let recipe = krill::Recipe::parse(&text, &recipes.join("big.yaml")).unwrap();
            let t1 = t.elapsed();
            let plan = krill::Plan::new(recipe).unwrap();
            let t2 = t.elapsed();
            let rendered =
                krill::compile::render::render_plan(&plan, krill::compile::target::Target::OLDEST);
            let t3 = t.elapsed();
            println!(
                "phases: parse+validate {:.1} ms, plan {:.1} ms, render {:.1} ms ({} units), rest is writing files",
                t1.as_secs_f64() * 1e3,
                (t2 - t1).as_secs_f64() * 1e3,
                (t3 - t2).as_secs_f64() * 1e3,
                rendered.len()
            );
        }
        std::fs::remove_dir_all(&out).unwrap();
    }
    times.sort();
    floor_times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (k, f) = (
        ms(times[times.len() / 2]),
        ms(floor_times[floor_times.len() / 2]),
    );
    println!(
        "generator, 1000 services ({units} unit files): median {k:.1} ms, min {:.1} ms, max {:.1} ms over {} runs (target < 50 ms)",
        ms(times[0]),
        ms(times[times.len() - 1]),
        times.len()
    );
    println!(
        "floor (a process writing the same files): median {f:.1} ms over {} runs; krill / floor {:.2}",
        floor_times.len(),
        k / f
    );
}
