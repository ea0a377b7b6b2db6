//! What tells `krill top` to re-read the status: krill-supervisor's `StateChanged`
//! signals while it owns its bus name, systemd's `PropertiesChanged` signals of krill
//! units while it does not. Each stream is drained by a task of its own that only
//! raises a flag: zbus stops reading the socket when a stream's queue is full, and
//! the loop awaiting a method reply meanwhile would then wait forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_util::StreamExt;
use krill::runtime::bus::{self as kbus, SUPERVISOR_NAME};
use tokio::sync::Notify;
use zbus::message::Type;
use zbus::MatchRule;

/// Raised by the signal tasks; the loop waits on [`Feed::changed`].
pub struct Feed {
    /// Something krill shows changed since the last read.
    pub changed: Notify,
    /// Whether krill-supervisor owns its bus name (its signals drive the view).
    supervisor: AtomicBool,
}

impl Feed {
    pub fn supervisor_up(&self) -> bool {
        self.supervisor.load(Ordering::Relaxed)
    }
}

/// Queue of each signal stream (signals, not messages: they only raise a flag).
const QUEUE: usize = 256;

fn rule() -> zbus::match_rule::Builder<'static> {
    MatchRule::builder().msg_type(Type::Signal)
}

/// Starts following `conn`'s bus. Returns once every match is in place, so that no
/// change after the first read goes unseen.
pub async fn start(conn: &zbus::Connection) -> zbus::Result<Arc<Feed>> {
    let dbus = zbus::fdo::DBusProxy::new(conn).await?;
    let owners = rule()
        .sender("org.freedesktop.DBus")?
        .interface("org.freedesktop.DBus")?
        .member("NameOwnerChanged")?
        .arg(0, SUPERVISOR_NAME)?
        .build();
    let mut owners = zbus::MessageStream::for_match_rule(owners, conn, Some(QUEUE)).await?;
    let states = rule()
        .interface(SUPERVISOR_NAME)?
        .member("StateChanged")?
        .path(kbus::SUPERVISOR_PATH)?
        .build();
    let mut states = zbus::MessageStream::for_match_rule(states, conn, Some(QUEUE)).await?;
    let units = rule()
        .sender("org.freedesktop.systemd1")?
        .interface("org.freedesktop.DBus.Properties")?
        .member("PropertiesChanged")?
        .path_namespace("/org/freedesktop/systemd1/unit")?
        .build();
    let mut units = zbus::MessageStream::for_match_rule(units, conn, Some(QUEUE)).await?;
    // systemd emits unit signals only while someone subscribed: the supervisor
    // usually has, but it may be the one that is down.
    match kbus::ManagerProxy::new(conn).await?.subscribe().await {
        Err(zbus::Error::MethodError(n, _, _))
            if n.as_str() == "org.freedesktop.systemd1.AlreadySubscribed" => {}
        r => r?,
    }
    let up = dbus
        .name_has_owner(SUPERVISOR_NAME.try_into().map_err(zbus::Error::from)?)
        .await?;
    let feed = Arc::new(Feed {
        changed: Notify::new(),
        supervisor: AtomicBool::new(up),
    });
    let f = feed.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = owners.next().await {
            let new_owner: Option<(String, String, String)> = m.body().deserialize().ok();
            if let Some((_, _, new)) = new_owner {
                f.supervisor.store(!new.is_empty(), Ordering::Relaxed);
                f.changed.notify_one();
            }
        }
    });
    let f = feed.clone();
    tokio::spawn(async move {
        while let Some(Ok(_)) = states.next().await {
            f.changed.notify_one();
        }
    });
    let f = feed.clone();
    tokio::spawn(async move {
        while let Some(Ok(m)) = units.next().await {
            if f.supervisor_up() {
                continue;
            }
            let krill_unit = m
                .header()
                .path()
                .and_then(|p| kbus::unit_of_path(p.as_str()))
                .is_some_and(|u| u.starts_with("krill-"));
            if krill_unit {
                f.changed.notify_one();
            }
        }
    });
    Ok(feed)
}
