//! Sessions: a hash per session (each field's value JSON text, plus hidden `\0ttl`, `\0user` and
//! `\0json` fields, the last the whole session as one JSON object, rebuilt by every write so a
//! read is one HGET) and a per-user index (a sorted set of session ids scored by expiry), kept in step by
//! Lua scripts.
//!
//! Key layout (after `keyPrefix` and `sessionPrefix`, default `sess:`):
//! - a generated id is 32 random hex digits (UUID v4) followed by 8 hex digits of its user's tag
//!   (the first 8 of SHA-1 of the user id), stored at `{<tag>}:<id>`, in the same hash slot as the
//!   user's index `user:{<tag>}:<userId>`: creating, refreshing and destroying touch one slot;
//! - a caller-chosen id (`setSession`, express-session) is stored at `{<id>}`.

use std::sync::Arc;

use redis::{Cmd, Value};

use crate::core::keys::{self, tagged};
use crate::core::script::Lua;
use crate::core::{Client, Error};

/// A session script: the shared helpers (`scripts/session_lib.lua`), then the script itself.
macro_rules! session_script {
    ($file:literal) => {
        Lua::new(concat!(
            include_str!("scripts/session_lib.lua"),
            include_str!(concat!("scripts/", $file))
        ))
    };
}

static WRITE: Lua = session_script!("session_write.lua");
static REFRESH: Lua = session_script!("session_refresh.lua");
static DESTROY: Lua = Lua::new(include_str!("scripts/session_destroy.lua"));
static USER: Lua = session_script!("session_user.lua");
static INDEX: Lua = session_script!("session_index.lua");

/// Hidden field: the session's TTL in seconds (for `refreshSession` without one).
pub const TTL_FIELD: &[u8] = b"\0ttl";
/// Hidden field: the whole session as one JSON object (what `getSession` reads).
pub const JSON_FIELD: &[u8] = b"\0json";
/// Hidden field: the user id the session is indexed under.
pub const USER_FIELD: &[u8] = b"\0user";

/// The slot tag of a user: 8 hex digits of SHA-1 of the id (the scripts compute the same).
pub fn user_tag(user: &str) -> String {
    let hex = sha1_smol::Sha1::from(user).hexdigest();
    hex[..8].to_string()
}

/// A new session id for `user`: UUID v4 (122 random bits) in hex, then the user's tag.
pub fn new_id(user: Option<&str>) -> String {
    let mut id = uuid::Uuid::new_v4().simple().to_string();
    match user {
        Some(u) => id.push_str(&user_tag(u)),
        None => id.push_str(&uuid::Uuid::new_v4().simple().to_string()[..8]),
    }
    id
}

fn generated(id: &str) -> bool {
    id.len() == 40
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Where sessions of one service live.
#[derive(Clone, Debug)]
pub struct Sessions {
    /// `keyPrefix` + `sessionPrefix`.
    pub base: Vec<u8>,
    /// Cluster mode: a session whose id we did not generate lives in its own slot, away from
    /// its user's index, so it is not indexed (one script may touch one slot only).
    pub cluster: bool,
}

impl Sessions {
    pub fn new(key_prefix: &str, session_prefix: &str) -> Sessions {
        Sessions {
            base: keys::namespaced(key_prefix.as_bytes(), session_prefix.as_bytes(), b""),
            cluster: false,
        }
    }

    /// Whether session `id` of `user` is kept in the user's index: always, except in cluster
    /// mode for an id that does not carry the user's slot tag (ids from `createSession()` do).
    pub fn indexed(&self, id: &str, user: &str) -> bool {
        !self.cluster || (generated(id) && id.get(32..) == Some(user_tag(user).as_str()))
    }

    /// The hash holding session `id`.
    pub fn key(&self, id: &str) -> Vec<u8> {
        match id.get(32..) {
            // A generated id carries its user's slot tag in its last 8 characters.
            Some(user) if generated(id) => {
                tagged(&[&self.base], user.as_bytes(), &[b":", id.as_bytes()])
            }
            _ => tagged(&[&self.base], id.as_bytes(), &[]),
        }
    }

    fn index_prefix(&self) -> Vec<u8> {
        keys::namespaced(&self.base, b"user:", b"")
    }

    /// `user`'s index of session ids.
    pub fn index(&self, user: &str) -> Vec<u8> {
        let tag = user_tag(user);
        tagged(
            &[&self.base, b"user:"],
            tag.as_bytes(),
            &[b":", user.as_bytes()],
        )
    }

    /// Writes session `id` (all `fields`, already JSON-encoded), indexed under `user`.
    pub fn write_cmd(
        &self,
        id: &str,
        user: Option<&str>,
        ttl_s: u64,
        fields: &[(Vec<u8>, Vec<u8>)],
        by_hash: bool,
    ) -> Cmd {
        let index = user.filter(|u| self.indexed(id, u)).map(|u| self.index(u));
        self.write_with(id, user, index, ttl_s, fields, by_hash)
    }

    /// The write script; `index` (the user's index key) is passed when it shares the slot.
    fn write_with(
        &self,
        id: &str,
        user: Option<&str>,
        index: Option<Vec<u8>>,
        ttl_s: u64,
        fields: &[(Vec<u8>, Vec<u8>)],
        by_hash: bool,
    ) -> Cmd {
        let key = self.key(id);
        let nkeys = if index.is_some() { 2 } else { 1 };
        WRITE.cmd(by_hash, nkeys, &|c| {
            c.arg(&key);
            if let Some(i) = &index {
                c.arg(i);
            }
            c.arg("replace").arg(ttl_s).arg(id);
            c.arg(TTL_FIELD).arg(ttl_s);
            if let Some(u) = user {
                c.arg(USER_FIELD).arg(u);
            }
            for (f, v) in fields {
                c.arg(f).arg(v);
            }
        })
    }

    /// Merges `fields` into session `id` if it exists (keeps its TTL).
    pub fn update_cmd(&self, id: &str, fields: &[(Vec<u8>, Vec<u8>)], by_hash: bool) -> Cmd {
        let key = self.key(id);
        WRITE.cmd(by_hash, 1, &|c| {
            c.arg(&key).arg("merge").arg(0).arg(id);
            for (f, v) in fields {
                c.arg(f).arg(v);
            }
        })
    }

    /// Resets session `id`'s TTL (to `ttl_s`, or its own).
    pub fn refresh_cmd(&self, id: &str, ttl_s: Option<u64>, by_hash: bool) -> Cmd {
        let key = self.key(id);
        let idx = self.index_prefix();
        REFRESH.cmd(by_hash, 1, &|c| {
            c.arg(&key);
            match ttl_s {
                Some(t) => c.arg(t),
                None => c.arg(""),
            };
            c.arg(id).arg(&idx);
        })
    }

    /// Deletes session `id` and its index entry.
    pub fn destroy_cmd(&self, id: &str, by_hash: bool) -> Cmd {
        let key = self.key(id);
        let idx = self.index_prefix();
        DESTROY.cmd(by_hash, 1, &|c| {
            c.arg(&key).arg(id).arg(&idx);
        })
    }

    /// `op` (`list`, `count`, `destroy`) on `user`'s live sessions.
    pub fn user_cmd(&self, user: &str, op: &str, by_hash: bool) -> Cmd {
        let idx = self.index(user);
        USER.cmd(by_hash, 1, &|c| {
            c.arg(&idx).arg(&self.base).arg(user).arg(op);
        })
    }
}

/// Cluster mode. A session whose id the caller chose lives in its own slot, away from its user's
/// index, and one script may touch one slot: the session and its index entry are then written
/// by two scripts, one after the other (the session first; if the second fails, the session
/// exists unindexed until it is written again), and the per-user operations check such sessions
/// one by one. Sessions from `createSession()` share their user's slot and stay atomic.
impl Sessions {
    async fn index_op(
        &self,
        client: &Arc<Client>,
        user: &[u8],
        op: &str,
        id: &str,
        ttl_s: i64,
    ) -> Result<(), Error> {
        let idx = self.index(&String::from_utf8_lossy(user));
        INDEX
            .run(client, 1, |c| {
                c.arg(&idx).arg(op).arg(id).arg(ttl_s);
            })
            .await
            .map(|_| ())
    }

    /// `setSession` with a user: the session, then its index entry when that lives elsewhere.
    ///
    /// # Errors
    /// `Connection`/`Timeout`/`Reply` from either step.
    pub async fn write_split(
        &self,
        client: &Arc<Client>,
        id: &str,
        user: &str,
        ttl_s: u64,
        fields: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(), Error> {
        let index = self.indexed(id, user).then(|| self.index(user));
        let remote = index.is_none();
        let cmd = |by_hash| self.write_with(id, Some(user), index.clone(), ttl_s, fields, by_hash);
        run_built(client, &cmd).await?;
        if remote {
            let ttl = i64::try_from(ttl_s).unwrap_or(i64::MAX);
            self.index_op(client, user.as_bytes(), "add", id, ttl)
                .await?;
        }
        Ok(())
    }

    /// `refreshSession`: resolves whether the session exists.
    ///
    /// # Errors
    /// `Connection`/`Timeout`/`Reply`.
    pub async fn refresh_split(
        &self,
        client: &Arc<Client>,
        id: &str,
        ttl_s: Option<u64>,
    ) -> Result<bool, Error> {
        let key = self.key(id);
        let idx = self.index_prefix();
        let v = REFRESH
            .run(client, 1, |c| {
                c.arg(&key);
                match ttl_s {
                    Some(t) => c.arg(t),
                    None => c.arg(""),
                };
                c.arg(id).arg(&idx).arg("1");
            })
            .await?;
        match v {
            Value::Array(parts) => match parts.as_slice() {
                [_, Value::BulkString(user), Value::Int(ttl)] => {
                    self.index_op(client, user, "add", id, *ttl).await?;
                    Ok(true)
                }
                _ => Err(Error::Reply("unexpected session refresh reply".into())),
            },
            v => Ok(v == Value::Int(1)),
        }
    }

    /// `destroySession`: resolves whether the session existed.
    ///
    /// # Errors
    /// `Connection`/`Timeout`/`Reply`.
    pub async fn destroy_split(&self, client: &Arc<Client>, id: &str) -> Result<bool, Error> {
        let key = self.key(id);
        let idx = self.index_prefix();
        let v = DESTROY
            .run(client, 1, |c| {
                c.arg(&key).arg(id).arg(&idx).arg("1");
            })
            .await?;
        match v {
            Value::Array(parts) => match parts.as_slice() {
                [Value::Int(n), Value::BulkString(user)] => {
                    self.index_op(client, user, "rem", id, 0).await?;
                    Ok(*n == 1)
                }
                _ => Err(Error::Reply("unexpected session destroy reply".into())),
            },
            v => Ok(v == Value::Int(1)),
        }
    }

    /// `listUserSessions` / `countUserSessions` / `destroyUserSessions` (`op`): the reply the
    /// one-script form gives (ids, or a count).
    ///
    /// # Errors
    /// `Connection`/`Timeout`/`Reply`.
    pub async fn user_split(
        &self,
        client: &Arc<Client>,
        user: &str,
        op: &str,
    ) -> Result<Value, Error> {
        let idx = self.index(user);
        let v = USER
            .run(client, 1, |c| {
                c.arg(&idx).arg(&self.base).arg(user).arg(op).arg("1");
            })
            .await?;
        let ids = |v: &Value| -> Vec<Vec<u8>> {
            match v {
                Value::Array(a) => a
                    .iter()
                    .filter_map(|x| match x {
                        Value::BulkString(b) => Some(b.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            }
        };
        let Value::Array(parts) = v else {
            return Err(Error::Reply("unexpected session index reply".into()));
        };
        let (mut live, remote) = match parts.as_slice() {
            [l, r] => (ids(l), ids(r)),
            _ => return Err(Error::Reply("unexpected session index reply".into())),
        };
        let owners = futures_util::future::join_all(remote.iter().map(|id| {
            let mut hget = redis::cmd("HGET");
            hget.arg(self.key(&String::from_utf8_lossy(id)))
                .arg(USER_FIELD);
            async move {
                let h = client.handle()?;
                client.query(h, &hget).await
            }
        }))
        .await;
        let mut gone = Vec::new();
        for (id, owner) in remote.into_iter().zip(owners) {
            if owner? == Value::BulkString(user.as_bytes().to_vec()) {
                if op == "destroy" {
                    let mut del = redis::cmd("DEL");
                    del.arg(self.key(&String::from_utf8_lossy(&id)));
                    client.query(client.handle()?, &del).await?;
                    gone.push(id.clone());
                }
                live.push(id);
            } else {
                gone.push(id);
            }
        }
        if op == "destroy" {
            gone.extend(live.iter().cloned());
        }
        if !gone.is_empty() {
            let mut zrem = redis::cmd("ZREM");
            zrem.arg(&idx).arg(&gone);
            client.query(client.handle()?, &zrem).await?;
        }
        Ok(match op {
            "list" => Value::Array(live.into_iter().map(Value::BulkString).collect()),
            _ => Value::Int(i64::try_from(live.len()).unwrap_or(i64::MAX)),
        })
    }
}

/// Runs a built script (`EVALSHA`, then `EVAL` on `NOSCRIPT`).
async fn run_built(
    client: &Arc<Client>,
    cmd: &(dyn Fn(bool) -> Cmd + Sync),
) -> Result<Value, Error> {
    match client.query(client.handle()?, &cmd(true)).await {
        Err(Error::Reply(m)) if m.starts_with("NOSCRIPT") => {
            client.query(client.handle()?, &cmd(false)).await
        }
        other => other,
    }
}

/// Days since 1970-01-01 → (year, month, day) (Howard Hinnant's civil-from-days).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A session's TTL when none is given: one day, in seconds.
pub const DEFAULT_TTL_S: u64 = 86_400;

/// A session's fields as stored: name → JSON text.
pub type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// Sets field `name` to the JSON text `json`, replacing any earlier value.
fn set_field(fields: &mut Fields, name: &[u8], json: String) {
    fields.retain(|(k, _)| k != name);
    fields.push((name.to_vec(), json.into_bytes()));
}

/// The fields of a new session of `user` (`numeric`: the caller gave a number, stored as one):
/// `data`, with `userId` and `createdAt` (now, ISO 8601) set over anything `data` said.
pub fn created(mut data: Fields, user: &str, numeric: bool, now_ms: u64) -> Fields {
    let user_json = if numeric {
        user.to_string()
    } else {
        serde_json::Value::String(user.to_string()).to_string()
    };
    set_field(&mut data, b"userId", user_json);
    set_field(&mut data, b"createdAt", timestamp(now_ms));
    data
}

/// `data` as written by `setSession`: `createdAt` set to now unless `data` gives one.
pub fn stamped(mut data: Fields, now_ms: u64) -> Fields {
    if !data.iter().any(|(k, _)| k == b"createdAt") {
        set_field(&mut data, b"createdAt", timestamp(now_ms));
    }
    data
}

/// `ms` as the JSON text of an ISO 8601 string.
fn timestamp(ms: u64) -> String {
    serde_json::Value::String(iso8601(ms)).to_string()
}

/// Epoch milliseconds as `Date.prototype.toISOString()` writes them.
pub fn iso8601(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_share_their_users_slot() {
        let s = Sessions::new("app:", "sess:");
        let id = new_id(Some("user123"));
        assert_eq!(id.len(), 40);
        let tag = user_tag("user123");
        assert_eq!(s.key(&id), format!("app:sess:{{{tag}}}:{id}").into_bytes());
        assert_eq!(
            s.index("user123"),
            format!("app:sess:user:{{{tag}}}:user123").into_bytes()
        );
        assert_eq!(s.key("abc"), b"app:sess:{abc}");
        assert_ne!(new_id(None), new_id(None));
    }

    #[test]
    fn cluster_indexes_only_ids_in_the_users_slot() {
        let s = Sessions {
            cluster: true,
            ..Sessions::new("", "sess:")
        };
        assert!(s.indexed(&new_id(Some("alice")), "alice"));
        assert!(!s.indexed(&new_id(Some("bob")), "alice"));
        assert!(!s.indexed(&new_id(None), "alice"));
        assert!(!s.indexed("express-sid", "alice"));
        assert!(Sessions::new("", "sess:").indexed("express-sid", "alice"));
    }

    #[test]
    fn tag_is_sha1_prefix() {
        // sha1("user123") = 95c946bf...
        assert_eq!(user_tag("user123"), "95c946bf");
    }

    #[test]
    fn iso_dates_match_javascript() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_795_311_349_359), "2026-11-22T01:35:49.359Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn a_new_session_names_its_user_and_time_over_what_data_said() {
        let data = vec![(b"userId".to_vec(), b"\"forged\"".to_vec())];
        let f = created(data, "u1", false, 0);
        assert_eq!(
            f,
            [
                (b"userId".to_vec(), b"\"u1\"".to_vec()),
                (
                    b"createdAt".to_vec(),
                    b"\"1970-01-01T00:00:00.000Z\"".to_vec()
                ),
            ]
        );
        let n = created(Vec::new(), "42", true, 0);
        assert_eq!(n[0].1, b"42");
    }

    #[test]
    fn set_session_keeps_a_given_created_at() {
        let given = vec![(b"createdAt".to_vec(), b"\"then\"".to_vec())];
        assert_eq!(stamped(given.clone(), 0), given);
        let f = stamped(Vec::new(), 1_000);
        assert_eq!(f[0].1, b"\"1970-01-01T00:00:01.000Z\"");
    }
}
