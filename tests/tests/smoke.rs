use std::time::Duration;

use krill_e2e::Container;

const T: Duration = Duration::from_secs(20);

#[test]
fn install_starts_a_dag_in_order() {
    let Some(_g) = krill_e2e::guard() else { return };
    let c = Container::boot("smoke");
    let recipe = r#"
version: "1"
name: w
services:
  a:
    execute: {type: shell, command: sleep infinity}
  b1:
    execute: {type: shell, command: sleep infinity}
    dependencies: [a]
  b2:
    execute: {type: shell, command: sleep infinity}
    dependencies: [a]
  c:
    execute: {type: shell, command: sleep infinity}
    dependencies: [b1, b2]
"#;
    let out = c.install("/root/w.yaml", recipe, "--now");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for s in ["a", "b1", "b2", "c"] {
        c.wait_state(&format!("krill-w-{s}.service"), "active/running", T);
    }
}
