//! Pub/sub: one dedicated RESP3 connection per service, opened on the first subscription. The
//! wanted channels and patterns are remembered, so after a lost connection the reconnect loop
//! subscribes to all of them again without the user doing anything. Messages arrive in the
//! connection's order and go to the sink in that order.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{PushInfo, PushKind, Value};

use crate::core::{Client, Error, Level};

/// A message for the subscriber's handlers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub channel: Vec<u8>,
    /// The matching pattern, for `psubscribe` deliveries.
    pub pattern: Option<Vec<u8>>,
    pub payload: Vec<u8>,
}

/// Channel or pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
}

#[derive(Default)]
struct Wanted {
    channels: BTreeSet<Vec<u8>>,
    patterns: BTreeSet<Vec<u8>>,
}

enum Link {
    None,
    Up {
        conn: MultiplexedConnection,
        gen: u64,
    },
    Down,
}

/// The subscriber of one service.
pub struct Subscriber {
    client: Weak<Client>,
    deliver: Box<dyn Fn(Message) + Send + Sync>,
    wanted: Mutex<Wanted>,
    link: Mutex<Link>,
    gate: tokio::sync::Mutex<u64>,
    closed: std::sync::atomic::AtomicBool,
}

fn parse(info: PushInfo) -> Option<Message> {
    let bytes = |v: Value| match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.into_bytes()),
        _ => None,
    };
    let mut it = info.data.into_iter();
    match info.kind {
        PushKind::Message => Some(Message {
            channel: bytes(it.next()?)?,
            pattern: None,
            payload: bytes(it.next()?)?,
        }),
        PushKind::PMessage => Some(Message {
            pattern: Some(bytes(it.next()?)?),
            channel: bytes(it.next()?)?,
            payload: bytes(it.next()?)?,
        }),
        _ => None,
    }
}

impl Subscriber {
    /// A subscriber for `client` delivering to `deliver` (not connected until the first
    /// subscription).
    pub fn new(
        client: &Arc<Client>,
        deliver: impl Fn(Message) + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(Subscriber {
            client: Arc::downgrade(client),
            deliver: Box::new(deliver),
            wanted: Mutex::new(Wanted::default()),
            link: Mutex::new(Link::None),
            gate: tokio::sync::Mutex::new(0),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn client(&self) -> Result<Arc<Client>, Error> {
        self.client
            .upgrade()
            .ok_or_else(|| Error::Connection("the service was closed".into()))
    }

    /// The live connection, opening it (and subscribing to everything wanted) when needed.
    async fn conn(self: &Arc<Self>) -> Result<MultiplexedConnection, Error> {
        if let Ok(l) = self.link.lock() {
            match &*l {
                Link::Up { conn, .. } => return Ok(conn.clone()),
                Link::Down => return Err(Error::Connection(
                    "the subscriber connection is reconnecting; subscriptions resume by themselves"
                        .into(),
                )),
                Link::None => {}
            }
        }
        self.open(None).await
    }

    async fn open(self: &Arc<Self>, after: Option<u64>) -> Result<MultiplexedConnection, Error> {
        let mut gen = self.gate.lock().await;
        if let Ok(l) = self.link.lock() {
            if let Link::Up { conn, gen: g } = &*l {
                if after.is_none_or(|a| *g > a) {
                    return Ok(conn.clone());
                }
            }
        }
        let client = self.client()?;
        *gen += 1;
        let my_gen = *gen;
        let weak = Arc::downgrade(self);
        let mut conn = client
            .connect_with(move |info| {
                let Some(me) = weak.upgrade() else { return };
                if info.kind == PushKind::Disconnection {
                    me.lost(my_gen);
                } else if let Some(m) = parse(info) {
                    (me.deliver)(m);
                }
            })
            .await?;
        let (channels, patterns) = match self.wanted.lock() {
            Ok(w) => (
                w.channels.iter().cloned().collect::<Vec<_>>(),
                w.patterns.iter().cloned().collect::<Vec<_>>(),
            ),
            Err(_) => (Vec::new(), Vec::new()),
        };
        if !channels.is_empty() {
            conn.subscribe(&channels)
                .await
                .map_err(|e| client.error(&e))?;
        }
        if !patterns.is_empty() {
            conn.psubscribe(&patterns)
                .await
                .map_err(|e| client.error(&e))?;
        }
        if let Ok(mut l) = self.link.lock() {
            *l = Link::Up {
                conn: conn.clone(),
                gen: my_gen,
            };
        }
        Ok(conn)
    }

    fn lost(self: &Arc<Self>, gen: u64) {
        {
            let Ok(mut l) = self.link.lock() else { return };
            if !matches!(&*l, Link::Up { gen: g, .. } if *g == gen) {
                return;
            }
            *l = Link::Down;
        }
        if self.closed.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let Ok(rt) = crate::core::connection::runtime() else {
            return;
        };
        let me = Arc::clone(self);
        rt.spawn(async move { me.reconnect(gen).await });
    }

    async fn reconnect(self: Arc<Self>, gen: u64) {
        let Ok(client) = self.client() else { return };
        let mut delay = client.cfg.reconnect_min_delay_ms.max(1);
        let max = client.cfg.reconnect_max_delay_ms.max(1);
        drop(client);
        loop {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            if self.closed.load(std::sync::atomic::Ordering::Acquire) || self.is_empty() {
                if let Ok(mut l) = self.link.lock() {
                    *l = Link::None;
                }
                return;
            }
            match self.open(Some(gen)).await {
                Ok(_) => {
                    if let Ok(c) = self.client() {
                        c.log(
                            Level::Info,
                            "pub/sub subscriptions restored after a reconnect",
                        );
                    }
                    return;
                }
                Err(_) => delay = (delay * 2).min(max),
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.wanted
            .lock()
            .map(|w| w.channels.is_empty() && w.patterns.is_empty())
            .unwrap_or(true)
    }

    /// Subscribes to `name` (a channel, or a pattern); resolves once the server confirmed it.
    ///
    /// # Errors
    /// `Connection`/`Timeout`/`Auth` when the subscriber connection cannot be opened.
    pub async fn subscribe(self: &Arc<Self>, kind: Kind, name: Vec<u8>) -> Result<(), Error> {
        if let Ok(mut w) = self.wanted.lock() {
            match kind {
                Kind::Channel => w.channels.insert(name.clone()),
                Kind::Pattern => w.patterns.insert(name.clone()),
            };
        }
        let client = self.client()?;
        let r = async {
            let mut conn = self.conn().await?;
            match kind {
                Kind::Channel => conn.subscribe(&name).await,
                Kind::Pattern => conn.psubscribe(&name).await,
            }
            .map_err(|e| client.error(&e))
        }
        .await;
        if r.is_err() {
            // Not subscribed after all (unless reconnecting, where it will be restored).
            let reconnecting = matches!(self.link.lock().as_deref(), Ok(Link::Down));
            if !reconnecting {
                self.forget(kind, &name);
            }
        }
        r
    }

    fn forget(&self, kind: Kind, name: &[u8]) {
        if let Ok(mut w) = self.wanted.lock() {
            match kind {
                Kind::Channel => w.channels.remove(name),
                Kind::Pattern => w.patterns.remove(name),
            };
        }
    }

    /// Unsubscribes from `name`; closes the connection once nothing is left.
    ///
    /// # Errors
    /// None in practice: an unreachable server has no subscription to drop.
    pub async fn unsubscribe(self: &Arc<Self>, kind: Kind, name: Vec<u8>) -> Result<(), Error> {
        self.forget(kind, &name);
        let conn = match self.link.lock().as_deref() {
            Ok(Link::Up { conn, .. }) => Some(conn.clone()),
            _ => None,
        };
        if let Some(mut conn) = conn {
            let _ = match kind {
                Kind::Channel => conn.unsubscribe(&name).await,
                Kind::Pattern => conn.punsubscribe(&name).await,
            };
        }
        if self.is_empty() {
            if let Ok(mut l) = self.link.lock() {
                *l = Link::None;
            }
        }
        Ok(())
    }

    /// Drops every subscription and the connection (the service disconnects).
    pub fn close(&self) {
        self.closed
            .store(true, std::sync::atomic::Ordering::Release);
        if let Ok(mut w) = self.wanted.lock() {
            *w = Wanted::default();
        }
        if let Ok(mut l) = self.link.lock() {
            *l = Link::None;
        }
    }

    /// Allows subscribing again after `close` (the service reconnects).
    pub fn reopen(&self) {
        self.closed
            .store(false, std::sync::atomic::Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_messages_parse() {
        let m = parse(PushInfo {
            kind: PushKind::Message,
            data: vec![
                Value::BulkString(b"news".to_vec()),
                Value::BulkString(b"hello".to_vec()),
            ],
        });
        assert_eq!(
            m,
            Some(Message {
                channel: b"news".to_vec(),
                pattern: None,
                payload: b"hello".to_vec()
            })
        );
        let p = parse(PushInfo {
            kind: PushKind::PMessage,
            data: vec![
                Value::BulkString(b"n*".to_vec()),
                Value::BulkString(b"news".to_vec()),
                Value::BulkString(b"hi".to_vec()),
            ],
        });
        assert_eq!(p.and_then(|m| m.pattern), Some(b"n*".to_vec()));
        assert_eq!(
            parse(PushInfo {
                kind: PushKind::Subscribe,
                data: vec![]
            }),
            None
        );
    }
}
