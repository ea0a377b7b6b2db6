//! pixi, ros2 and docker services end to end, through the exact command lines krill
//! generates, run by labelled stand-ins (tests/standins): pixi and ROS 2 cannot be
//! installed on the test machines. Docker services also run in Debian's real
//! docker.io engine, inside the test container.

use std::time::Duration;

use krill_e2e::{now_us, Container, Flavor};

const T: Duration = Duration::from_secs(20);

#[test]
fn pixi_ros2_and_docker_services_run_and_stop() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("exec-types");
    c.install_standins();
    c.write(
        "/opt/ros/humble/setup.bash",
        "export ROS_DISTRO=humble\nexport AMENT_PREFIX_PATH=/opt/ros/humble\n",
    );
    c.write(
        "/opt/robot/planner/pixi.toml",
        "[tasks]\nplan = \"sleep infinity\"\nsave-map = \"touch /run/map-saved\"\n",
    );
    c.ok("mkdir -p /opt/robot/models");
    let recipe = r#"
version: "1"
name: robot
env:
  ROS_DOMAIN_ID: "42"
services:
  planner:
    execute:
      type: pixi
      task: plan
      environment: gpu
      stop_task: save-map
      working_dir: planner
  nav:
    execute:
      type: ros2
      package: nav2_bringup
      launch_file: navigation_launch.py
      setup_script: /opt/ros/humble/setup.bash
      launch_args:
        use_sim_time: "false"
        map: "/maps/warehouse.yaml"
    dependencies: [planner]
  perception:
    execute:
      type: docker
      image: ghcr.io/robotics/perception:v2.1
      volumes: ["./models:/app/models:ro", "/dev/shm:/dev/shm"]
      ports: ["8080:8080"]
      network: host
    dependencies: [nav]
    policy: {stop_timeout: 3s}
"#;
    c.write("/opt/robot/robot.yaml", recipe);
    c.ok("krill install /opt/robot/robot.yaml --now");
    for s in ["planner", "nav", "perception"] {
        c.wait_state(&format!("krill-robot-{s}.service"), "active/running", T);
    }
    // pixi: the exact command line, run from the manifest's directory. The stand-in
    // writes its record after its exec (when systemd already says active): wait for
    // a complete line.
    c.wait_for("pixi stand-in record", T, || {
        std::fs::read_to_string(c.path("/run/pixi-standin.log")).is_ok_and(|l| l.contains('\n'))
    });
    let pixi = std::fs::read_to_string(c.path("/run/pixi-standin.log")).unwrap();
    assert_eq!(
        pixi.lines().next().unwrap(),
        "run --manifest-path /opt/robot/planner/pixi.toml -e gpu plan"
    );
    // ros2: the setup script was sourced, launch args sorted by key.
    // Written after the stand-in started: wait for the whole record, not the file.
    c.wait_for("ros2 stand-in record", T, || {
        std::fs::read_to_string(c.path("/run/ros2-standin.json"))
            .is_ok_and(|j| serde_json::from_str::<serde_json::Value>(&j).is_ok())
    });
    let ros: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.path("/run/ros2-standin.json")).unwrap())
            .unwrap();
    assert_eq!(
        ros["argv"],
        serde_json::json!([
            "launch",
            "nav2_bringup",
            "navigation_launch.py",
            "map:=/maps/warehouse.yaml",
            "use_sim_time:=false"
        ])
    );
    assert_eq!(ros["ROS_DISTRO"], "humble");
    assert_eq!(ros["ROS_DOMAIN_ID"], "42");
    // docker: a named --rm container, relative volume resolved, environment passed.
    // The `rm` line comes first and `run` follows from another process: wait for
    // both complete lines, not for the file to exist (that raced the second write).
    c.wait_for("docker stand-in records of rm and run", T, || {
        std::fs::read_to_string(c.path("/run/docker-standin.log"))
            .is_ok_and(|l| l.matches('\n').count() >= 2)
    });
    let log = std::fs::read_to_string(c.path("/run/docker-standin.log")).unwrap();
    let entries: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        entries[0]["argv"],
        serde_json::json!(["rm", "--force", "krill-robot-perception"])
    );
    assert_eq!(
        entries[1]["argv"],
        serde_json::json!([
            "run",
            "--rm",
            "--name",
            "krill-robot-perception",
            "--cgroup-parent=krill-robot-perception.slice",
            "--network=host",
            "--volume=/opt/robot/models:/app/models:ro",
            "--volume=/dev/shm:/dev/shm",
            "--mount=type=bind,src=/run/krill/krill.sock,dst=/run/krill/krill.sock",
            "--mount=type=bind,src=/run/krill/krill.sock,dst=/tmp/krill.sock",
            "--publish=8080:8080",
            "--env=ROS_DOMAIN_ID",
            "--env=KRILL_WORKSPACE",
            "--env=KRILL_SERVICE",
            "--env=KRILL_SOCKET",
            "ghcr.io/robotics/perception:v2.1"
        ])
    );
    assert_eq!(entries[1]["env"]["ROS_DOMAIN_ID"], "42");
    assert_eq!(entries[1]["env"]["KRILL_SERVICE"], "perception");

    // Stopping runs the stop commands: docker stop with the stop timeout, the pixi
    // stop task; dependents stop first.
    c.ok("krill stop robot");
    for s in ["planner", "nav", "perception"] {
        c.wait_state(&format!("krill-robot-{s}.service"), "inactive/dead", T);
    }
    let log = std::fs::read_to_string(c.path("/run/docker-standin.log")).unwrap();
    assert!(
        log.contains(r#"{"argv": ["stop", "--time=3", "krill-robot-perception"]}"#),
        "{log}"
    );
    assert!(c.path("/run/map-saved").exists(), "pixi stop_task ran");
    let pixi = std::fs::read_to_string(c.path("/run/pixi-standin.log")).unwrap();
    assert!(
        pixi.contains("run --manifest-path /opt/robot/planner/pixi.toml -e gpu save-map"),
        "{pixi}"
    );
    let stopped = |s: &str| {
        c.num(
            &format!("krill-robot-{s}.service"),
            "InactiveEnterTimestampMonotonic",
        )
    };
    assert!(stopped("perception") <= stopped("nav") && stopped("nav") <= stopped("planner"));
}

/// `type: docker` in a real engine (Debian's docker.io in the container), with an
/// image built here from a tarball: start, a heartbeat from inside the container
/// through the mounted socket, `docker kill` and the restart policy, and a stop that
/// ends within `stop_timeout` even when the container ignores SIGTERM.
#[test]
fn docker_services_run_in_a_real_engine() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot_flavor("docker", Flavor::Docker);
    // The image: one static program (tests/images/beater.cpp, on the C++ SDK).
    krill_e2e::build_cpp_beater(&c.path("/var/tmp/image/beater"));
    c.wait_for("the docker engine", T, || {
        c.sh("docker info").status.success()
    });
    c.ok("tar -C /var/tmp/image -cf /var/tmp/beater.tar . \
          && docker import --change 'CMD [\"/beater\"]' /var/tmp/beater.tar krill-e2e/beater:1");
    // A dash in the workspace's name: the container's slice name is escaped.
    let recipe = r#"
version: "1"
name: dock-yard
services:
  beater:
    execute: {type: docker, image: "krill-e2e/beater:1", network: none}
    health_check: {type: heartbeat, timeout: 3s}
    policy: {restart: on-failure, stop_timeout: 10s}
  stubborn:
    execute: {type: docker, image: "krill-e2e/beater:1", network: none}
    health_check: {type: heartbeat, timeout: 3s}
    policy: {restart: on-failure, stop_timeout: 2s}
"#;
    c.write("/opt/dock/dock.yaml", recipe);
    c.ok("krill up /opt/dock/dock.yaml");
    let unit = |s: &str| format!("krill-dock-yard-{s}.service");
    let healthy = |s: &str| c.service_status("dock-yard", s)["health"] == "healthy";
    // Heartbeats from inside the containers reach the supervisor and are accepted:
    // `beater` through KRILL_SOCKET, `stubborn` through upstream's /tmp/krill.sock.
    for s in ["beater", "stubborn"] {
        c.wait_for(&format!("{s} healthy"), T, || healthy(s));
    }
    // The container's processes run in the service's container slice, below the
    // workspace's slice (and its limits), not in docker's own.
    let cgroup =
        c.ok("cat /proc/$(docker inspect --format '{{.State.Pid}}' krill-dock-yard-beater)/cgroup");
    assert!(
        cgroup.contains(
            "0::/krill.slice/krill-dock\\x2dyard.slice/krill-dock\\x2dyard-beater.slice/docker-"
        ),
        "{cgroup}"
    );
    // The container's output is in the service's journal.
    c.wait_for("the container's output in the journal", T, || {
        c.journal(&format!("-u {}", unit("beater")))
            .contains("beater beating as pid 1 of its container")
    });

    // kill: the container dies (137), the restart policy brings a new one, and its
    // heartbeats make the service healthy again.
    let id = |s: &str| {
        c.ok(&format!(
            "docker inspect --format '{{{{.Id}}}}' krill-dock-yard-{s}"
        ))
    };
    let first = id("beater");
    c.ok("docker kill krill-dock-yard-beater");
    c.wait_for("beater restarted", T, || {
        c.num(&unit("beater"), "NRestarts") >= 1
    });
    c.wait_for("beater's new container healthy", T, || {
        c.state(&unit("beater")) == "active/running"
            && c.sh("docker inspect krill-dock-yard-beater")
                .status
                .success()
            && id("beater") != first
            && healthy("beater")
    });

    // stop: beater exits on SIGTERM; stubborn ignores it, and docker stop kills it
    // after its 2 s stop_timeout, before systemd's own deadline (TimeoutStopSec=7s)
    // would have killed the docker client and left the container behind.
    let t0 = now_us();
    c.ok("krill stop dock-yard");
    c.wait_state(&unit("beater"), "inactive/dead", T);
    // Killed by docker, `docker run` exits 137: a failed stop, as after systemd's
    // own SIGKILL.
    c.wait_for("stubborn stopped", T, || {
        ["inactive/dead", "failed/failed"].contains(&c.state(&unit("stubborn")).as_str())
    });
    let took = |s: &str| c.num(&unit(s), "InactiveEnterTimestampMonotonic") - t0;
    eprintln!(
        "docker stop: beater {} ms, stubborn {} ms (stop_timeout 2 s)",
        took("beater") / 1000,
        took("stubborn") / 1000
    );
    assert_eq!(c.prop(&unit("beater"), "Result"), "success");
    assert!(
        took("stubborn") >= 2_000_000,
        "docker stop waited the stop_timeout"
    );
    assert_ne!(c.prop(&unit("stubborn"), "Result"), "timeout");
    assert_eq!(
        c.ok("docker ps --all --quiet").trim(),
        "",
        "no container left behind"
    );
    assert!(c
        .journal(&format!("-u {}", unit("beater")))
        .contains("beater stopping on SIGTERM"));
}
