//! A wrapper around ureq's default connector: body reads return every `BODY_POLL_INTERVAL`, and the
//! wait for response headers is cut into such slices within its own budget, so the main loop
//! sees signals and its idle timer while a server streams, stalls, or withholds its headers.
//!
//! It uses ureq's `unversioned::transport` API; a ureq minor update may need a change here.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ureq::unversioned::transport::{
    Buffers, ConnectionDetails, Connector, DefaultConnector, NextTimeout, Transport,
};

use super::BODY_POLL_INTERVAL;

/// Wraps ureq's default connector so that reads of a response body return every
/// `BODY_POLL_INTERVAL`, while the handshake and the response headers keep their own, longer budgets.
#[derive(Debug)]
pub(super) struct PollingConnector {
    pub(super) inner: DefaultConnector,
    pub(super) streaming: Arc<AtomicBool>,
    pub(super) shutdown: Arc<AtomicBool>,
}

impl Connector<()> for PollingConnector {
    type Out = PollingTransport;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let transport = self.inner.connect(details, chained)?;
        Ok(transport.map(|inner| PollingTransport {
            inner,
            streaming: Arc::clone(&self.streaming),
            shutdown: Arc::clone(&self.shutdown),
        }))
    }
}

#[derive(Debug)]
pub(super) struct PollingTransport {
    inner: Box<dyn Transport>,
    streaming: Arc<AtomicBool>,
    shutdown: Arc<AtomicBool>,
}

impl Transport for PollingTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, mut timeout: NextTimeout) -> Result<bool, ureq::Error> {
        if self.streaming.load(Ordering::Relaxed) {
            timeout.per_read = Some(BODY_POLL_INTERVAL.into());
            return self.inner.await_input(timeout);
        }
        // Waiting for the response head: wait in `BODY_POLL_INTERVAL` slices within the same total
        // budget, so that a shutdown is seen while a server withholds or trickles its headers.
        let started = std::time::Instant::now();
        let budget = (!timeout.after.is_not_happening()).then(|| *timeout.after);
        let own_per_read = timeout.per_read.map(|d| *d);
        loop {
            // Checked before every wait too: a server that trickles its head byte by byte never
            // lets a slice time out.
            if self.shutdown.load(Ordering::Relaxed) {
                return Err(ureq::Error::Io(io::Error::new(
                    io::ErrorKind::Interrupted,
                    "shutting down",
                )));
            }
            let mut slice = timeout;
            if let Some(budget) = budget {
                let left = budget.saturating_sub(started.elapsed());
                if left.is_zero() {
                    return Err(ureq::Error::Timeout(timeout.reason));
                }
                slice.after = left.into();
            }
            let cap = own_per_read.map_or(BODY_POLL_INTERVAL, |d| d.min(BODY_POLL_INTERVAL));
            slice.per_read = Some(cap.into());
            match self.inner.await_input(slice) {
                Err(ureq::Error::Timeout(ureq::Timeout::PerRead))
                    if own_per_read.is_none_or(|d| d > BODY_POLL_INTERVAL) => {}
                other => return other,
            }
        }
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}
