//! pixi, ros2 and docker services end to end, through the exact command lines krill
//! generates, run by labelled stand-ins (tests/standins): these tools cannot be
//! installed on the test machines.

use std::time::Duration;

use krill_e2e::Container;

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
    // pixi: the exact command line, run from the manifest's directory.
    let pixi = std::fs::read_to_string(c.path("/run/pixi-standin.log")).unwrap();
    assert_eq!(
        pixi.lines().next().unwrap(),
        "run --manifest-path /opt/robot/planner/pixi.toml -e gpu plan"
    );
    // ros2: the setup script was sourced, launch args sorted by key.
    c.wait_for("ros2 stand-in record", T, || {
        c.path("/run/ros2-standin.json").exists()
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
            "--network=host",
            "--volume=/opt/robot/models:/app/models:ro",
            "--volume=/dev/shm:/dev/shm",
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
