//! Lua scripts: sent as `EVALSHA`; when the server does not know the script (`NOSCRIPT` after a
//! restart, a failover or `SCRIPT FLUSH`) the same call is retried once as `EVAL`, which also
//! loads it for the next time.

use std::sync::{Arc, OnceLock};

use redis::{Cmd, Value};

use crate::core::{Client, Error};

/// Whether `r` asks for the script in full: the server does not know the `EVALSHA`'s script
/// (`NOSCRIPT`). The one test of it, for both paths: [`Lua::run`] retries inline; the JS-thread
/// engine resends the job's `EVAL` form.
pub fn wants_eval<T>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::Reply(m)) if m.starts_with("NOSCRIPT"))
}

/// A script compiled into the binary, with its SHA1 computed once.
pub struct Lua {
    code: &'static str,
    hash: OnceLock<String>,
}

impl Lua {
    pub const fn new(code: &'static str) -> Self {
        Lua {
            code,
            hash: OnceLock::new(),
        }
    }

    fn hash(&self) -> &str {
        self.hash
            .get_or_init(|| redis::Script::new(self.code).get_hash().to_string())
    }

    /// The `EVALSHA` (`by_hash`) or `EVAL` command; `add` appends the keys, then the arguments.
    pub fn cmd(&self, by_hash: bool, nkeys: usize, add: &dyn Fn(&mut Cmd)) -> Cmd {
        let mut c = if by_hash {
            let mut c = redis::cmd("EVALSHA");
            c.arg(self.hash());
            c
        } else {
            let mut c = redis::cmd("EVAL");
            c.arg(self.code);
            c
        };
        c.arg(nkeys);
        add(&mut c);
        c
    }

    /// Runs the script with `nkeys` keys; `add` appends the keys, then the arguments.
    ///
    /// # Errors
    /// `Connection`/`Timeout` when Redis cannot be reached, `Reply` for a script error.
    pub async fn run(
        &self,
        client: &Arc<Client>,
        nkeys: usize,
        add: impl Fn(&mut Cmd),
    ) -> Result<Value, Error> {
        let h = client.handle()?;
        let r = client.query(h, &self.cmd(true, nkeys, &add)).await;
        if wants_eval(&r) {
            let h = client.handle()?;
            return client.query(h, &self.cmd(false, nkeys, &add)).await;
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evalsha_and_eval_carry_the_same_arguments() {
        static S: Lua = Lua::new("return 1");
        let add = |c: &mut Cmd| {
            c.arg("k").arg(5);
        };
        let sha = S.cmd(true, 1, &add).get_packed_command();
        let text = String::from_utf8_lossy(&sha).to_string();
        assert!(text.contains("EVALSHA"));
        assert!(text.contains("e0e1f9fabfc9d4800c877a703b823ac0578ff8db"));
        let eval = String::from_utf8_lossy(&S.cmd(false, 1, &add).get_packed_command()).to_string();
        assert!(eval.contains("return 1"));
        assert!(
            text.ends_with("$1\r\nk\r\n$1\r\n5\r\n") && eval.ends_with("$1\r\nk\r\n$1\r\n5\r\n")
        );
    }

    #[test]
    fn only_noscript_asks_for_the_script_in_full() {
        let noscript: Result<(), Error> = Err(Error::Reply(
            "NOSCRIPT No matching script. Please use EVAL.".into(),
        ));
        assert!(wants_eval(&noscript));
        assert!(!wants_eval(&Err::<(), _>(Error::Reply("ERR boom".into()))));
        assert!(!wants_eval(&Err::<(), _>(Error::Connection(
            "NOSCRIPT".into()
        ))));
        assert!(!wants_eval(&Ok::<_, Error>(1)));
    }
}
