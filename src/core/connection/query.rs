//! Sending on the crate's connections: one command, a command at a given node, pipelines (routed
//! per command in a cluster), and turning the crate's errors into ours (a dropped connection is
//! noted so the outage logic reconnects).

use std::sync::Arc;

use redis::{Cmd, Value};

use super::*;

impl Client {
    /// Runs one command on `h`, noting a dropped connection.
    ///
    /// # Errors
    /// `Reply` for an error reply, `Connection`/`Timeout` for transport failures.
    pub async fn query(self: &Arc<Self>, mut h: Handle, cmd: &Cmd) -> Result<Value, Error> {
        let out = h.conn.one(cmd).await;
        self.settled(out, h.gen)
    }

    fn settled(self: &Arc<Self>, out: redis::RedisResult<Value>, gen: u64) -> Result<Value, Error> {
        match out {
            Ok(Value::ServerError(e)) => Err(Error::Reply(server_error_text(&e.into()))),
            Ok(v) => {
                if self.in_outage.load(Ordering::Relaxed) && self.is_cluster() {
                    self.end_outage();
                }
                Ok(v)
            }
            Err(e) => Err(self.classify(&e, gen)),
        }
    }

    /// Runs one command on the node at `at` (cluster mode), or like [`Client::query`] when `at`
    /// is `None` or the service is not a cluster.
    ///
    /// # Errors
    /// As [`Client::query`].
    pub async fn query_at(
        self: &Arc<Self>,
        h: Handle,
        at: Option<&Node>,
        cmd: &Cmd,
    ) -> Result<Value, Error> {
        let (Some((host, port)), Conn::Cluster(mut c)) = (at, h.conn.clone()) else {
            return self.query(h, cmd).await;
        };
        let route = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
            host: host.clone(),
            port: *port,
        });
        let out = c.route_command(cmd.clone(), route).await;
        self.settled(out, h.gen)
    }

    /// Runs a (non-atomic) pipeline and returns one raw value per command; error replies stay in
    /// place as `Value::ServerError`.
    ///
    /// # Errors
    /// `Connection`/`Timeout` for transport failures.
    pub async fn query_pipeline(
        self: &Arc<Self>,
        mut h: Handle,
        pipe: &redis::Pipeline,
        count: usize,
    ) -> Result<Vec<Value>, Error> {
        if count == 0 {
            return Ok(Vec::new());
        }
        h.conn
            .many(pipe, count)
            .await
            .map_err(|e| self.classify(&e, h.gen))
    }

    /// Cluster mode: sends a pipeline to one node, chosen by `route` (a slot's master); outside
    /// cluster mode, like [`Client::query_pipeline`].
    ///
    /// # Errors
    /// `Connection`/`Timeout` for transport failures.
    pub async fn query_routed_pipeline(
        self: &Arc<Self>,
        h: Handle,
        pipe: redis::Pipeline,
        count: usize,
        route: SingleNodeRoutingInfo,
    ) -> Result<Vec<Value>, Error> {
        let Conn::Cluster(mut c) = h.conn.clone() else {
            return self.query_pipeline(h, &pipe, count).await;
        };
        match c.route_pipeline(pipe, 0, count, route).await {
            Ok(v) => {
                if self.in_outage.load(Ordering::Relaxed) {
                    self.end_outage();
                }
                Ok(v)
            }
            Err(e) => Err(self.classify(&e, h.gen)),
        }
    }

    fn classify(self: &Arc<Self>, e: &redis::RedisError, gen: u64) -> Error {
        if let redis::ErrorKind::Server(_) = e.kind() {
            return Error::Reply(redact_server(e, self.secret()));
        }
        let err = self.error(e);
        if matches!(err, Error::Connection(_)) {
            if self.is_cluster() {
                // The cluster connection reconnects per node by itself; only tell the logger.
                self.start_outage(&err.to_string());
            } else {
                self.on_lost(gen, &err.to_string());
            }
        }
        err
    }
}
