//! Clocks. Status compares systemd's `…TimestampMonotonic` properties with "now";
//! both must come from CLOCK_MONOTONIC, in µs, in every program.

/// CLOCK_MONOTONIC in µs (systemd's `*TimestampMonotonic` clock).
pub fn monotonic_us() -> u64 {
    clock_us(libc::CLOCK_MONOTONIC)
}

/// CLOCK_REALTIME in µs since the Unix epoch (systemd's `*Timestamp` clock).
pub fn realtime_us() -> u64 {
    clock_us(libc::CLOCK_REALTIME)
}

fn clock_us(id: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for clock_gettime to fill.
    if unsafe { libc::clock_gettime(id, &mut t) } != 0 {
        return 0;
    }
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}
