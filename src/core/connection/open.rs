//! Opening a connection: the address (Sentinel asks, TLS names), the crate's client, the
//! cluster connection, the server's version.

use super::*;

/// Maps the TLS `servername` to the real host, so the certificate is checked against the name
/// while the socket goes to the address.
struct ServernameResolver {
    name: String,
    real_host: String,
}

impl redis::io::AsyncDNSResolver for ServernameResolver {
    fn resolve<'a, 'b: 'a>(
        &'a self,
        host: &'b str,
        port: u16,
    ) -> redis::RedisFuture<'a, Box<dyn Iterator<Item = SocketAddr> + Send + 'a>> {
        let target = if host == self.name {
            self.real_host.clone()
        } else {
            host.to_string()
        };
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((target.as_str(), port))
                .await?
                .collect();
            Ok(Box::new(addrs.into_iter()) as Box<dyn Iterator<Item = SocketAddr> + Send>)
        })
    }
}

impl Client {
    pub(super) async fn open(self: &Arc<Self>, gen: u64) -> Result<Conn, Error> {
        let mut conn = self.open_conn(gen).await?;
        let mut info = redis::cmd("INFO");
        info.arg("server");
        if let Some(major) = conn.one(&info).await.ok().as_ref().and_then(min_major) {
            self.server_major.store(major, Ordering::Relaxed);
        }
        Ok(conn)
    }

    /// Major version of the server (the lowest of a cluster's nodes), or 0 while unknown: lets
    /// a feature use commands newer than Redis 6 (`PEXPIRE ... NX`) when the server has them.
    pub fn server_major(&self) -> u64 {
        self.server_major.load(Ordering::Relaxed)
    }

    pub(super) async fn open_conn(self: &Arc<Self>, gen: u64) -> Result<Conn, Error> {
        if let Topology::Cluster { nodes } = &self.cfg.topology {
            return self.open_cluster(nodes).await.map(Conn::Cluster);
        }
        let weak: Weak<Client> = Arc::downgrade(self);
        let mut conn = self
            .connect_with(move |info: PushInfo| {
                let Some(c) = weak.upgrade() else { return };
                match info.kind {
                    PushKind::Disconnection => c.on_lost(gen, "the server closed the connection"),
                    // The near cache on the runtime path: called as the push is read, before the
                    // replies after it reach their callers.
                    PushKind::Invalidate => {
                        if let Some(near) = &c.near {
                            let push = Value::Push {
                                kind: info.kind,
                                data: info.data,
                            };
                            if let Some(what) = crate::core::near_cache::invalidated_keys(&push) {
                                near.apply(what);
                            }
                        }
                    }
                    _ => {}
                }
            })
            .await?;
        if let Some(name) = &self.cfg.client_name {
            let mut c = redis::cmd("CLIENT");
            c.arg("SETNAME").arg(name);
            // An error reply arrives as a value: it is an error here.
            match conn.send_packed_command(&c).await {
                Err(e) => return Err(self.error(&e)),
                Ok(Value::ServerError(e)) => return Err(self.error(&e.into())),
                Ok(_) => {}
            }
        }
        if self.near.is_some() && !self.plain.load(Ordering::Relaxed) {
            // The runtime path serves the near cache's reads on this connection.
            let mut c = redis::cmd("CLIENT");
            c.arg("TRACKING").arg("ON");
            let why = match conn.send_packed_command(&c).await {
                Err(e) => Some(crate::core::error::server_error_text(&e)),
                Ok(Value::ServerError(e)) => Some(crate::core::error::pipeline_error_text(&e)),
                Ok(_) => None,
            };
            if let Some(why) = why {
                let why = crate::core::error::redact(&why, self.secret());
                return Err(crate::core::error::tracking_refused(&why));
            }
        }
        if self.plain.load(Ordering::Relaxed) {
            let target = self.target();
            let tls = self.js_tls(&target.0)?;
            let socket = crate::core::wire::open_stream(&self.cfg, &target, tls).await?;
            self.sink.attach(socket, gen);
        }
        Ok(Conn::Single(conn))
    }

    pub(super) async fn open_cluster(&self, nodes: &[Node]) -> Result<ClusterConnection, Error> {
        let limit = Duration::from_millis(self.cfg.connect_timeout_ms);
        let infos = nodes
            .iter()
            .map(|n| node_info(&self.cfg, n, false))
            .collect::<Result<Vec<_>, Error>>()?;
        let mut b = redis::cluster::ClusterClientBuilder::new(infos)
            .use_protocol(redis::ProtocolVersion::RESP3)
            .connection_timeout(limit)
            .response_timeout(Duration::from_millis(self.cfg.command_timeout_ms))
            .min_retry_wait(self.cfg.reconnect_min_delay_ms.max(1))
            .max_retry_wait(self.cfg.reconnect_max_delay_ms.max(1));
        if let Some(u) = &self.cfg.username {
            b = b.username(u);
        }
        if let Some(p) = &self.cfg.password {
            b = b.password(p);
        }
        if let Some(t) = &self.cfg.tls {
            b = b.tls(if t.reject_unauthorized {
                redis::TlsMode::Secure
            } else {
                redis::TlsMode::Insecure
            });
            if t.ca.is_some() || t.cert.is_some() {
                b = b.certs(tls_certificates(t)?);
            }
        }
        let client = b
            .build()
            .map_err(|e| Error::arg(format!("invalid cluster settings: {}", self.error(&e))))?;
        match tokio::time::timeout(limit, client.get_async_connection()).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(match self.error(&e) {
                Error::Reply(m) => {
                    Error::Connection(format!("Redis Cluster connection failed: {m}"))
                }
                other => other,
            }),
            Err(_) => Err(Error::Timeout(format!(
                "could not connect to {} within connectTimeoutMs ({} ms)",
                self.describe(),
                self.cfg.connect_timeout_ms
            ))),
        }
    }

    /// Asks the Sentinels, in order, for the address of master `name`.
    pub(super) async fn ask_sentinels(
        &self,
        sentinels: &[Node],
        name: &str,
    ) -> Result<Node, Error> {
        let limit = Duration::from_millis(self.cfg.connect_timeout_ms);
        let mut why = String::from("no Sentinel configured");
        for node in sentinels {
            let (h, p) = node;
            let client = build_redis_client(&self.cfg, node, true)?;
            let ask = async {
                let conf = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(limit))
                    .set_response_timeout(Some(limit));
                let mut c = client
                    .get_multiplexed_async_connection_with_config(&conf)
                    .await?;
                let mut q = redis::cmd("SENTINEL");
                q.arg("GET-MASTER-ADDR-BY-NAME").arg(name);
                c.send_packed_command(&q).await
            };
            why = match tokio::time::timeout(limit, ask).await {
                Ok(Ok(Value::Array(parts))) => match master_addr(&parts) {
                    Some(addr) => return Ok(addr),
                    None => format!("Sentinel {h}:{p} sent an unexpected reply"),
                },
                Ok(Ok(Value::Nil)) => {
                    format!("Sentinel {h}:{p} does not monitor a master named '{name}'")
                }
                Ok(Ok(_)) => format!("Sentinel {h}:{p} sent an unexpected reply"),
                Ok(Err(e)) => format!(
                    "Sentinel {h}:{p}: {}",
                    crate::core::error::redact(
                        &self.error(&e).to_string(),
                        self.cfg.sentinel_password.as_deref()
                    )
                ),
                Err(_) => format!("Sentinel {h}:{p} did not answer within connectTimeoutMs"),
            };
        }
        Err(Error::Connection(format!(
            "no Sentinel could name the master '{name}' ({why})"
        )))
    }

    pub(super) fn set_target(&self, node: Node) {
        if let Ok(mut t) = self.target.write() {
            if *t != node {
                *t = node;
            }
        }
    }

    /// Opens one multiplexed RESP3 connection whose server pushes (and the crate's
    /// `Disconnection` notice) go to `push`: the service's own, or a subscriber's.
    ///
    /// # Errors
    /// `Connection`, `Timeout` (within `connectTimeoutMs`) or `Auth`.
    ///
    /// Standalone: the configured server. Sentinel: the master the Sentinels name now (checked
    /// with `ROLE`). Cluster: the first seed node that answers (classic pub/sub is cluster-wide).
    pub async fn connect_with(
        &self,
        push: impl Fn(PushInfo) + Send + Sync + 'static,
    ) -> Result<MultiplexedConnection, Error> {
        let push: Arc<dyn Fn(PushInfo) + Send + Sync> = Arc::new(push);
        match &self.cfg.topology {
            Topology::Standalone => self.connect_node(&self.target(), push).await,
            Topology::Sentinel {
                sentinels,
                master_name,
            } => {
                let master = self.ask_sentinels(sentinels, master_name).await?;
                self.set_target(master.clone());
                let mut conn = self.connect_node(&master, push).await?;
                let role = conn
                    .send_packed_command(&redis::cmd("ROLE"))
                    .await
                    .map_err(|e| self.error(&e))?;
                match role {
                    Value::Array(r) if matches!(r.first(), Some(Value::BulkString(b)) if b == b"master") => {
                        Ok(conn)
                    }
                    _ => Err(Error::Connection(format!(
                        "{}:{} is not a master yet (Sentinel failover in progress); retrying",
                        master.0, master.1
                    ))),
                }
            }
            Topology::Cluster { nodes } => {
                let mut last = Error::Connection("cluster.nodes is empty".into());
                for n in nodes {
                    match self.connect_node(n, Arc::clone(&push)).await {
                        Ok(c) => return Ok(c),
                        Err(e) => last = e,
                    }
                }
                Err(last)
            }
        }
    }

    /// The JS-thread connection's TLS settings and the name checked for `host` (`None`: plain
    /// TCP). Made once per client and kept.
    fn js_tls(
        &self,
        host: &str,
    ) -> Result<
        Option<(
            Arc<rustls::ClientConfig>,
            rustls::pki_types::ServerName<'static>,
        )>,
        Error,
    > {
        let Some(t) = &self.cfg.tls else {
            return Ok(None);
        };
        let config = match self.js_tls.get() {
            Some(c) => Arc::clone(c),
            None => {
                let c = crate::core::tls::client_config(t)?;
                Arc::clone(self.js_tls.get_or_init(|| c))
            }
        };
        Ok(Some((config, crate::core::tls::server_name(t, host)?)))
    }

    pub(super) async fn connect_node(
        &self,
        node: &Node,
        push: Arc<dyn Fn(PushInfo) + Send + Sync>,
    ) -> Result<MultiplexedConnection, Error> {
        let connect_timeout = Duration::from_millis(self.cfg.connect_timeout_ms);
        let mut conf = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(connect_timeout))
            .set_response_timeout(Some(Duration::from_millis(self.cfg.command_timeout_ms)))
            .set_push_sender(move |info: PushInfo| {
                push(info);
                Ok::<(), ()>(())
            });
        if let Some(name) = self.cfg.tls.as_ref().and_then(|t| t.servername.clone()) {
            conf = conf.set_dns_resolver(ServernameResolver {
                name,
                real_host: node.0.clone(),
            });
        }
        let client = build_redis_client(&self.cfg, node, false)?;
        let fut = client.get_multiplexed_async_connection_with_config(&conf);
        let conn = match tokio::time::timeout(connect_timeout, fut).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                let err = self.error(&e);
                return Err(match err {
                    Error::Reply(m) => Error::Connection(format!(
                        "Redis connection failed: {m}{}",
                        crate::core::error::resp2_hint(&m)
                    )),
                    other => other,
                });
            }
            Err(_) => {
                return Err(Error::Timeout(format!(
                    "could not connect to Redis at {}:{} within connectTimeoutMs ({} ms)",
                    node.0, node.1, self.cfg.connect_timeout_ms
                )))
            }
        };
        Ok(conn)
    }
}

/// Connection info for one node. `sentinel` uses the Sentinel credentials, RESP2 and db 0.
pub(super) fn node_info(
    cfg: &Config,
    (host, port): &Node,
    sentinel: bool,
) -> Result<redis::ConnectionInfo, Error> {
    let host = cfg
        .tls
        .as_ref()
        .and_then(|t| t.servername.clone())
        .filter(|_| !sentinel)
        .unwrap_or_else(|| host.clone());
    let addr = match &cfg.tls {
        None => redis::ConnectionAddr::Tcp(host, *port),
        Some(t) => redis::ConnectionAddr::TcpTls {
            host,
            port: *port,
            insecure: !t.reject_unauthorized,
            tls_params: None,
        },
    };
    let (user, pass) = if sentinel {
        (&cfg.sentinel_username, &cfg.sentinel_password)
    } else {
        (&cfg.username, &cfg.password)
    };
    // RESP3 (Redis 6+): the connection then reports its own loss at once, so an outage is
    // noticed when it happens, not at the next command.
    let mut rinfo =
        redis::RedisConnectionInfo::default().set_lib_name("app-redis", env!("CARGO_PKG_VERSION"));
    if !sentinel {
        rinfo = rinfo
            .set_protocol(redis::ProtocolVersion::RESP3)
            .set_db(cfg.db);
    }
    if let Some(u) = user {
        rinfo = rinfo.set_username(u);
    }
    if let Some(p) = pass {
        rinfo = rinfo.set_password(p);
    }
    Ok(redis::IntoConnectionInfo::into_connection_info(addr)
        .map_err(|e| Error::arg(format!("invalid connection settings: {e}")))?
        .set_redis_settings(rinfo))
}

pub(super) fn tls_certificates(
    t: &crate::core::config::TlsOptions,
) -> Result<redis::TlsCertificates, Error> {
    let client_tls = match (&t.cert, &t.key) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: cert.clone(),
            client_key: key.clone(),
        }),
        (None, None) => None,
        _ => return Err(Error::arg("tls.cert and tls.key must be given together")),
    };
    Ok(redis::TlsCertificates {
        client_tls,
        root_cert: t.ca.clone(),
    })
}

pub(super) fn build_redis_client(
    cfg: &Config,
    node: &Node,
    sentinel: bool,
) -> Result<redis::Client, Error> {
    let info = node_info(cfg, node, sentinel)?;
    match &cfg.tls {
        Some(t) if t.ca.is_some() || t.cert.is_some() || t.key.is_some() => {
            redis::Client::build_with_tls(info, tls_certificates(t)?)
                .map_err(|e| Error::arg(format!("tls settings are not usable: {e}")))
        }
        _ => redis::Client::open(info)
            .map_err(|e| Error::arg(format!("invalid connection settings: {e}"))),
    }
}

/// The lowest `redis_version` major in an `INFO server` reply (one text, or a cluster's map of
/// node texts).
pub(super) fn min_major(v: &Value) -> Option<u64> {
    let text = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("redis_version:"))
            .and_then(|ver| ver.trim().split('.').next()?.parse::<u64>().ok())
    };
    match v {
        Value::BulkString(b) => text(&String::from_utf8_lossy(b)),
        Value::VerbatimString { text: t, .. } => text(t),
        Value::SimpleString(t) => text(t),
        Value::Map(kv) => kv.iter().filter_map(|(_, x)| min_major(x)).min(),
        Value::Array(xs) => xs.iter().filter_map(min_major).min(),
        _ => None,
    }
}

/// `[host, port]` from `SENTINEL GET-MASTER-ADDR-BY-NAME`.
pub(super) fn master_addr(parts: &[Value]) -> Option<Node> {
    let text = |v: &Value| match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    };
    match parts {
        [h, p] => Some((text(h)?, text(p)?.parse().ok()?)),
        _ => None,
    }
}
