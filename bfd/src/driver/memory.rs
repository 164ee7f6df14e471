//! An in-memory network for driver tests: datagrams go straight from one [`super::Bfd`]'s
//! session to another's dispatcher, through the same validation as real ones. Links can
//! be cut, and raw datagrams injected, to test detection and bad input without sockets.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};

use super::dispatch::{Dispatcher, Hop};

#[derive(Default)]
struct Inner {
    hosts: HashMap<IpAddr, Weak<Dispatcher>>,
    cut: HashSet<(IpAddr, IpAddr)>,
}

/// A set of addresses that can reach each other, shared by the [`super::Bfd`] instances
/// built with [`super::Bfd::in_memory`].
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryNetwork {
    /// An empty network.
    pub fn new() -> MemoryNetwork {
        MemoryNetwork::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn attach(&self, address: IpAddr, dispatcher: &Arc<Dispatcher>) {
        self.lock()
            .hosts
            .insert(address, Arc::downgrade(dispatcher));
    }

    /// Drops every datagram between `a` and `b`, both ways.
    pub fn cut(&self, a: IpAddr, b: IpAddr) {
        let mut inner = self.lock();
        inner.cut.insert((a, b));
        inner.cut.insert((b, a));
    }

    /// Undoes [`MemoryNetwork::cut`].
    pub fn restore(&self, a: IpAddr, b: IpAddr) {
        let mut inner = self.lock();
        inner.cut.remove(&(a, b));
        inner.cut.remove(&(b, a));
    }

    /// Delivers a raw datagram from `from` to `to` on the `hop` port with `ttl`, as if it
    /// had come off the wire.
    pub fn inject(&self, from: IpAddr, to: IpAddr, hop: Hop, ttl: u8, datagram: &[u8]) {
        let target = {
            let inner = self.lock();
            if inner.cut.contains(&(from, to)) {
                return;
            }
            inner.hosts.get(&to).and_then(Weak::upgrade)
        };
        if let Some(dispatcher) = target {
            dispatcher.deliver(datagram, from, Some(ttl), hop);
        }
    }
}
