//! What the service sees of the servers: `healthCheck()`'s PING and node list (`CLUSTER NODES`,
//! Sentinel's view), and the nodes a key-space walk must visit.

use std::sync::Arc;

use super::*;

/// One node as `healthCheck()` reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInfo {
    pub host: String,
    pub port: u16,
    /// `master`, `replica` or `sentinel`.
    pub role: &'static str,
    /// Marked failed by the cluster (`fail` flag).
    pub failed: bool,
}

/// Health snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub connected: bool,
    pub latency_ms: Option<f64>,
}

impl Client {
    /// The nodes a key-space walk (SCAN) must visit: every reachable cluster master, or `[None]`
    /// (the one server) outside cluster mode.
    ///
    /// # Errors
    /// As [`Client::query`].
    pub async fn scan_targets(self: &Arc<Self>) -> Result<Vec<Option<Node>>, Error> {
        if !self.is_cluster() {
            return Ok(vec![None]);
        }
        Ok(self
            .cluster_nodes()
            .await?
            .into_iter()
            .filter(|n| n.role == "master" && !n.failed)
            .map(|n| Some((n.host, n.port)))
            .collect())
    }

    /// The cluster's nodes, from `CLUSTER NODES` on any node.
    async fn cluster_nodes(self: &Arc<Self>) -> Result<Vec<NodeInfo>, Error> {
        let mut c = redis::cmd("CLUSTER");
        c.arg("NODES");
        let text = match self.query(self.handle()?, &c).await? {
            Value::BulkString(b) => String::from_utf8_lossy(&b).into_owned(),
            Value::VerbatimString { text, .. } => text,
            Value::SimpleString(s) => s,
            _ => return Err(Error::Reply("unexpected CLUSTER NODES reply".into())),
        };
        Ok(parse_cluster_nodes(&text))
    }

    /// The nodes this service sees, for `healthCheck()`: the one server; the master and the
    /// Sentinels; or every cluster node with its role.
    pub async fn nodes(self: &Arc<Self>) -> Vec<NodeInfo> {
        let (host, port) = self.target();
        let master = NodeInfo {
            host,
            port,
            role: "master",
            failed: !self.is_connected(),
        };
        match &self.cfg.topology {
            Topology::Standalone => vec![master],
            Topology::Sentinel { sentinels, .. } => std::iter::once(master)
                .chain(sentinels.iter().map(|(h, p)| NodeInfo {
                    host: h.clone(),
                    port: *p,
                    role: "sentinel",
                    failed: false,
                }))
                .collect(),
            Topology::Cluster { .. } => {
                let mut all = self.cluster_nodes().await.unwrap_or_default();
                all.sort_by_key(|n| (n.role != "master", n.port));
                all
            }
        }
    }

    /// PINGs and measures the round trip in milliseconds.
    pub async fn health(self: &Arc<Self>) -> Health {
        let Ok(h) = self.handle() else {
            return Health {
                connected: false,
                latency_ms: None,
            };
        };
        let start = Instant::now();
        match self.query(h, &redis::cmd("PING")).await {
            Ok(_) => Health {
                connected: true,
                latency_ms: Some(start.elapsed().as_secs_f64() * 1000.0),
            },
            Err(_) => Health {
                connected: false,
                latency_ms: None,
            },
        }
    }
}

/// Parses `CLUSTER NODES`: one line per node, `id ip:port@cport[,hostname] flags master ...`.
pub fn parse_cluster_nodes(text: &str) -> Vec<NodeInfo> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let _id = f.next()?;
            let addr = f.next()?;
            let flags = f.next()?;
            let hostport = addr.split(['@', ',']).next()?;
            let (host, port) = hostport.rsplit_once(':')?;
            let port: u16 = port.parse().ok().filter(|p| *p != 0)?;
            let flags: Vec<&str> = flags.split(',').collect();
            if host.is_empty() || flags.contains(&"noaddr") || flags.contains(&"handshake") {
                return None;
            }
            Some(NodeInfo {
                host: host.to_string(),
                port,
                role: if flags.contains(&"master") {
                    "master"
                } else {
                    "replica"
                },
                failed: flags.contains(&"fail"),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_are_parsed() {
        let text = "\
07c3 127.0.0.1:30004@40004 slave e7d1 0 1426238317239 4 connected
67ed 127.0.0.1:30002@40002 master - 0 1426238316232 2 connected 5461-10922
292f 127.0.0.1:30003@40003,host3 master,fail - 0 1426238318243 3 connected 10923-16383
e7d1 127.0.0.1:30001@40001 myself,master - 0 0 1 connected 0-5460
aaaa :0@0 master,noaddr - 0 0 0 disconnected
";
        let n = parse_cluster_nodes(text);
        assert_eq!(n.len(), 4);
        assert_eq!(
            (n[0].port, n[0].role, n[0].failed),
            (30004, "replica", false)
        );
        assert_eq!((n[2].port, n[2].role, n[2].failed), (30003, "master", true));
        assert_eq!((n[3].host.as_str(), n[3].role), ("127.0.0.1", "master"));
    }
}
