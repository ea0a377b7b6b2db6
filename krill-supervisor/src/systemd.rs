//! The parts of systemd's D-Bus API the supervisor uses.

use zbus::zvariant::OwnedObjectPath;

pub use krill::runtime::bus::{
    unit_of_path, unit_path, unit_properties as properties, ManagerProxy, ReloadingStream,
};

/// A unit's state as the supervisor needs it: the facts status reads too.
pub use krill::runtime::bus::{unit_facts as read_state, UnitFacts as UnitState};

/// A unit's ActiveState.
pub async fn active_state(conn: &zbus::Connection, path: &OwnedObjectPath) -> zbus::Result<String> {
    let props = properties(conn, path).await?;
    let v = props
        .get(
            zbus::names::InterfaceName::from_static_str_unchecked("org.freedesktop.systemd1.Unit"),
            "ActiveState",
        )
        .await?;
    Ok(String::try_from(v).unwrap_or_default())
}
