//! `serve`'s fault plans: how each connection ends (after N events, closed, cut in the middle
//! of an event, stalled), from the flags or reproducibly at random under `--chaos SEED`, and the
//! waits that hold a stalled or finished connection open.

use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::Config;

/// A stalled connection is held at most this long, so test servers never leak threads for ever.
const MAX_STALL: Duration = Duration::from_secs(3600);

/// How one connection ends: after how many events, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Plan {
    pub(super) disconnect_after: Option<u64>,
    pub(super) cut_mid_event: bool,
    pub(super) stall: bool,
}

/// The plan for connection `request_idx`: the fault flags as given, or under `--chaos SEED` a
/// reproducible random mix: 1 to 5000 events, then a clean close, a cut in the middle of an
/// event (half the time) or a stall (one connection in 25).
pub(super) fn plan(args: &Config, request_idx: u64) -> Plan {
    let Some(seed) = args.chaos_seed else {
        return Plan {
            disconnect_after: args.disconnect_every,
            cut_mid_event: args.cut_mid_event,
            stall: false,
        };
    };
    let mut state = (seed ^ request_idx.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    Plan {
        disconnect_after: Some(1 + next() % 5000),
        cut_mid_event: next() % 2 == 0,
        stall: next() % 25 == 0,
    }
}

/// Waits `duration` while watching for the client to go away (so its connection stops counting
/// against `--max-connections-per-ip` at once); returns true when it did.
pub(super) fn wait_unless_closed(socket: &mut TcpStream, duration: Duration) -> io::Result<bool> {
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let until = Instant::now() + duration;
    let mut buf = [0u8; 512];
    while Instant::now() < until {
        match socket.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(false)
}

/// Keeps a stalled socket open, sending nothing, until the client goes away.
pub(super) fn hold_until_closed(socket: &mut TcpStream) -> io::Result<()> {
    wait_unless_closed(socket, MAX_STALL).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chaos_plans_mix_all_faults_reproducibly() {
        let args = Config {
            chaos_seed: Some(3),
            ..Config::default()
        };
        let plans: Vec<Plan> = (0..500).map(|idx| plan(&args, idx)).collect();
        assert!(
            plans
                .iter()
                .all(|p| p.disconnect_after.is_some_and(|n| (1..=5000).contains(&n)))
        );
        assert!(plans.iter().any(|p| p.stall) && plans.iter().any(|p| p.cut_mid_event));
        assert!(plans.iter().any(|p| !p.stall && !p.cut_mid_event));
        assert_eq!(plans[7], plan(&args, 7));
    }
}
