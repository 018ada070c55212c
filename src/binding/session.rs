//! Sessions on `RedisService`: argument checks and JSON encoding on the JS thread, one script call
//! in the ordinary batch, and the session degradation policy (fail closed; `failOpen` degrades).

use std::sync::Arc;

use napi::bindgen_prelude::{Env, Unknown};
use napi::sys;
use napi_derive::napi;

use crate::binding::args::{Arg, Ctx};
use crate::binding::decode::{Decode, Empty, Out};
use crate::binding::error::JsPromise;
use crate::binding::error::JsResult;
use crate::binding::service::RedisService;
use crate::core::policy::{Decision, Feature};
use crate::core::session::{self, Fields, Sessions, DEFAULT_TTL_S};
use crate::core::Error;
use crate::engine::batch::{Policy, Shape};

/// Default session TTL: 24 hours, in seconds.
const MAX_TTL_S: f64 = 2_147_483.0;

fn ttl_arg(c: Ctx, a: Arg) -> Result<Option<u64>, Error> {
    if a.is_nullish() {
        return Ok(None);
    }
    match a.float(c, "ttlSeconds") {
        Ok(n) if n.fract() == 0.0 && (1.0..=MAX_TTL_S).contains(&n) => Ok(Some(n as u64)),
        _ => Err(c.bad("ttlSeconds", "a positive integer (seconds)", a)),
    }
}

fn id_arg(c: Ctx, a: Arg) -> Result<String, Error> {
    let id = a.string(c, "id")?;
    if id.is_empty() {
        return Err(c.bad("id", "a non-empty string", a));
    }
    Ok(id)
}

/// A user id: a non-empty string, or a finite number (as its decimal text).
fn user_arg(c: Ctx, name: &str, a: Arg) -> Result<String, Error> {
    a.key(c, name)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|_| c.bad(name, "a non-empty string or a finite number", a))
}

/// Each own property of a plain object, its value JSON-encoded (skipped when JSON would drop it).
fn fields(c: Ctx, name: &str, a: Arg) -> Result<Fields, Error> {
    if !a.is_plain_object() {
        return Err(c.bad(name, "a plain object", a));
    }
    let js = a.js();
    let mut out = Vec::new();
    for (k, v) in a.entries(c, name)? {
        let key = k.text().unwrap_or_default();
        match js.json_stringify(v.raw()) {
            Ok(Some(text)) => out.push((key.into_bytes(), text.into_bytes())),
            Ok(None) => {}
            Err(_) => {
                return Err(Error::arg(format!(
                "{}(): `{name}.{key}` cannot be stored as JSON (a BigInt or a circular structure?)",
                c.method
            )))
            }
        }
    }
    Ok(out)
}

impl RedisService {
    fn sessions(&self) -> Sessions {
        Sessions {
            cluster: self.client.is_cluster(),
            ..Sessions::new(&self.client.cfg.key_prefix, &self.client.cfg.session_prefix)
        }
    }

    /// Sends a session script under the session policy; `make(by_hash)` builds it.
    fn session_cmd(
        &self,
        env: &Env,
        built: Result<Box<dyn Fn(bool) -> redis::Cmd + '_>, Error>,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        self.session_shape(env, built, Shape::One(decode, empty))
    }

    fn session_shape(
        &self,
        env: &Env,
        built: Result<Box<dyn Fn(bool) -> redis::Cmd + '_>, Error>,
        shape: Shape,
    ) -> JsResult<JsPromise> {
        let policy = Policy::of(&self.client.cfg, Feature::Sessions);
        self.submit_built(env, built, true, shape, policy)
    }

    /// Writes a whole session; resolves the id (`createSession`) or `true`; `null` when degraded.
    fn write_session(
        &self,
        env: &Env,
        parsed: Result<(String, Option<String>, u64, Fields), Error>,
        resolve_id: bool,
    ) -> JsResult<JsPromise> {
        let sessions = self.sessions();
        if let Ok((id, Some(user), ttl, fields)) = &parsed {
            if !sessions.indexed(id, user) {
                let (id, user, ttl, fields) = (id.clone(), user.clone(), *ttl, fields.clone());
                let client = Arc::clone(&self.client);
                return self.session_split(env, Empty::Null, async move {
                    sessions
                        .write_split(&client, &id, &user, ttl, &fields)
                        .await?;
                    Ok(Out::Json(if resolve_id {
                        serde_json::Value::String(id)
                    } else {
                        serde_json::Value::Bool(true)
                    }))
                });
            }
        }
        let (built, id) = match parsed {
            Ok((id, user, ttl, fields)) => {
                let reply_id = id.clone();
                let make = move |h| sessions.write_cmd(&id, user.as_deref(), ttl, &fields, h);
                (
                    Ok(Box::new(make) as Box<dyn Fn(bool) -> redis::Cmd>),
                    reply_id,
                )
            }
            Err(e) => (Err(e), String::new()),
        };
        let convert: crate::engine::batch::Convert = Box::new(move |v| {
            Ok(Out::Json(match v? {
                Some(_) if resolve_id => serde_json::Value::String(id),
                Some(_) => serde_json::Value::Bool(true),
                None => serde_json::Value::Null,
            }))
        });
        self.session_shape(env, built, Shape::Custom(convert))
    }
}

#[napi]
impl RedisService {
    /// Creates a session for `userId` holding `data` for `ttlSeconds` (default 86400 = 24 h) and
    /// indexes it under the user, atomically. Resolves the new id: 40 hex characters, 122 of its
    /// bits random (UUID v4). `getSession(id)` returns `{ ...data, userId, createdAt }`.
    #[napi(
        ts_args_type = "userId: string | number, data?: Record<string, unknown>, ttlSeconds?: number",
        ts_return_type = "Promise<string>"
    )]
    pub fn create_session(
        &self,
        env: Env,
        user_id: Unknown,
        data: Unknown,
        ttl_seconds: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "createSession",
        };
        let parsed = (|| {
            let user = user_arg(c, "userId", Arg::from(user_id))?;
            let data = Arg::from(data);
            let f = if data.is_nullish() {
                Vec::new()
            } else {
                fields(c, "data", data)?
            };
            let ttl = ttl_arg(c, Arg::from(ttl_seconds))?.unwrap_or(DEFAULT_TTL_S);
            let numeric = Arg::from(user_id).kind() == sys::ValueType::napi_number;
            let f = session::created(f, &user, numeric, crate::core::now_ms());
            Ok((session::new_id(Some(&user)), Some(user), ttl, f))
        })();
        self.write_session(&env, parsed, true)
    }

    /// Writes session `id` (your own id: express-session's, seed 004's) with `data` for
    /// `ttlSeconds` (default 86400), replacing what was there. `data.userId` indexes it under that
    /// user. Resolves `true` (`null` when degraded).
    #[napi(
        ts_args_type = "id: string, data: Record<string, unknown>, ttlSeconds?: number",
        ts_return_type = "Promise<boolean | null>"
    )]
    pub fn set_session(
        &self,
        env: Env,
        id: Unknown,
        data: Unknown,
        ttl_seconds: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "setSession",
        };
        let parsed = (|| {
            let id = id_arg(c, Arg::from(id))?;
            let data = Arg::from(data);
            let f = fields(c, "data", data)?;
            let ttl = ttl_arg(c, Arg::from(ttl_seconds))?.unwrap_or(DEFAULT_TTL_S);
            let user_v = data.get("userId");
            let user = if user_v.is_nullish() {
                None
            } else {
                Some(user_arg(c, "data.userId", user_v)?)
            };
            Ok((id, user, ttl, session::stamped(f, crate::core::now_ms())))
        })();
        self.write_session(&env, parsed, false)
    }

    /// The session `{ ...data, userId, createdAt }`, or `null` when it does not exist (expired,
    /// destroyed, never created).
    #[napi(
        ts_args_type = "id: string",
        ts_return_type = "Promise<Record<string, any> | null>"
    )]
    pub fn get_session(&self, env: Env, id: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "getSession",
        };
        let cmd = id_arg(c, Arg::from(id)).map(|id| {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(self.sessions().key(&id)).arg(session::JSON_FIELD);
            cmd
        });
        let policy = Policy::of(&self.client.cfg, Feature::Sessions);
        self.read_through(&env, cmd, (Decode::Json, Empty::Null), policy)
    }

    /// Merges `patch` into session `id`, atomically, keeping its remaining TTL: resolves `true`,
    /// or `false` when it does not exist. Concurrent updates of different fields both survive.
    #[napi(
        ts_args_type = "id: string, patch: Record<string, unknown>",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn update_session(&self, env: Env, id: Unknown, patch: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "updateSession",
        };
        let built = (|| {
            let id = id_arg(c, Arg::from(id))?;
            let f = fields(c, "patch", Arg::from(patch))?;
            let s = self.sessions();
            Ok(Box::new(move |h| s.update_cmd(&id, &f, h)) as Box<dyn Fn(bool) -> redis::Cmd>)
        })();
        self.session_cmd(&env, built, Decode::Bool, Empty::False)
    }

    /// Sliding expiration: resets session `id`'s TTL to `ttlSeconds` (default: the TTL it was
    /// written with). Resolves `false` when it does not exist.
    #[napi(
        ts_args_type = "id: string, ttlSeconds?: number",
        ts_return_type = "Promise<boolean>"
    )]
    pub fn refresh_session(
        &self,
        env: Env,
        id: Unknown,
        ttl_seconds: Unknown,
    ) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "refreshSession",
        };
        let parsed = (|| {
            let id = id_arg(c, Arg::from(id))?;
            Ok((id, ttl_arg(c, Arg::from(ttl_seconds))?))
        })();
        if self.client.is_cluster() {
            let (s, client) = (self.sessions(), Arc::clone(&self.client));
            return self.session_split(&env, Empty::False, async move {
                let (id, ttl) = parsed?;
                let ok = s.refresh_split(&client, &id, ttl).await?;
                Ok(Out::Json(serde_json::Value::Bool(ok)))
            });
        }
        let built = parsed.map(|(id, ttl)| {
            let s = self.sessions();
            Box::new(move |h| s.refresh_cmd(&id, ttl, h)) as Box<dyn Fn(bool) -> redis::Cmd>
        });
        self.session_cmd(&env, built, Decode::Bool, Empty::False)
    }

    /// Deletes session `id` (and its index entry): `true` if it existed.
    #[napi(ts_args_type = "id: string", ts_return_type = "Promise<boolean>")]
    pub fn destroy_session(&self, env: Env, id: Unknown) -> JsResult<JsPromise> {
        let c = Ctx {
            method: "destroySession",
        };
        let id = id_arg(c, Arg::from(id));
        if self.client.is_cluster() {
            let (s, client) = (self.sessions(), Arc::clone(&self.client));
            return self.session_split(&env, Empty::False, async move {
                let ok = s.destroy_split(&client, &id?).await?;
                Ok(Out::Json(serde_json::Value::Bool(ok)))
            });
        }
        let built = id.map(|id| {
            let s = self.sessions();
            Box::new(move |h| s.destroy_cmd(&id, h)) as Box<dyn Fn(bool) -> redis::Cmd>
        });
        self.session_cmd(&env, built, Decode::Bool, Empty::False)
    }

    /// Logs a user out everywhere: deletes every live session of `userId`; resolves how many.
    #[napi(
        ts_args_type = "userId: string | number",
        ts_return_type = "Promise<number>"
    )]
    pub fn destroy_user_sessions(&self, env: Env, user_id: Unknown) -> JsResult<JsPromise> {
        self.user_op(
            &env,
            "destroyUserSessions",
            user_id,
            "destroy",
            Decode::Auto,
            Empty::Zero,
        )
    }

    /// How many live sessions `userId` has (expired and destroyed ones are pruned from the index).
    #[napi(
        ts_args_type = "userId: string | number",
        ts_return_type = "Promise<number>"
    )]
    pub fn count_user_sessions(&self, env: Env, user_id: Unknown) -> JsResult<JsPromise> {
        self.user_op(
            &env,
            "countUserSessions",
            user_id,
            "count",
            Decode::Auto,
            Empty::Zero,
        )
    }

    /// The ids of `userId`'s live sessions.
    #[napi(
        ts_args_type = "userId: string | number",
        ts_return_type = "Promise<string[]>"
    )]
    pub fn list_user_sessions(&self, env: Env, user_id: Unknown) -> JsResult<JsPromise> {
        self.user_op(
            &env,
            "listUserSessions",
            user_id,
            "list",
            Decode::Auto,
            Empty::Array,
        )
    }
}

impl RedisService {
    fn user_op(
        &self,
        env: &Env,
        method: &'static str,
        user_id: Unknown,
        op: &'static str,
        decode: Decode,
        empty: Empty,
    ) -> JsResult<JsPromise> {
        let c = Ctx { method };
        if self.client.is_cluster() {
            let user = user_arg(c, "userId", Arg::from(user_id));
            let (s, client) = (self.sessions(), Arc::clone(&self.client));
            return self.session_split(env, empty, async move {
                let v = s.user_split(&client, &user?, op).await?;
                Ok(Out::Reply(v, decode))
            });
        }
        let built = user_arg(c, "userId", Arg::from(user_id)).map(|user| {
            let s = self.sessions();
            Box::new(move |h| s.user_cmd(&user, op, h)) as Box<dyn Fn(bool) -> redis::Cmd>
        });
        self.session_cmd(env, built, decode, empty)
    }

    /// Cluster mode, sessions whose index lives in another slot: the steps run on the runtime
    /// (see `Sessions::write_split`), under the same degradation rules as the one-script form.
    fn session_split<F>(&self, env: &Env, empty: Empty, fut: F) -> JsResult<JsPromise>
    where
        F: std::future::Future<Output = Result<Out, Error>> + Send + 'static,
    {
        let client = Arc::clone(&self.client);
        let policy = Policy::of(&client.cfg, Feature::Sessions);
        self.spawn(env, async move {
            if !client.cfg.enabled {
                return Ok(Out::Empty(empty));
            }
            match fut.await {
                Err(e) => match policy.after(&client, e) {
                    Decision::Degrade => Ok(Out::Empty(empty)),
                    Decision::Fail(e) => Err(e),
                },
                ok => ok,
            }
        })
    }
}
