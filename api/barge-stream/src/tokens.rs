//! The single-use tokens of the URLs handed out, as kubelet's request cache: random, valid
//! for a while, consumed by the first request that names them, bounded in number.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::{Pending, StreamError};

pub(crate) struct Tokens {
    ttl: Duration,
    max: usize,
    map: Mutex<HashMap<String, (Instant, Pending)>>,
}

impl Tokens {
    pub fn new(ttl: Duration, max: usize) -> Tokens {
        Tokens {
            ttl,
            max,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// Keep `p` under a new token; the token.
    pub fn insert(&self, p: Pending) -> Result<String, StreamError> {
        let token = barge_engine::names::new_id().map_err(|e| StreamError::Token(e.to_string()))?;
        let now = Instant::now();
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        m.retain(|_, (expires, _)| *expires > now);
        if m.len() >= self.max {
            return Err(StreamError::TooManyRequests(self.max));
        }
        m.insert(token.clone(), (now + self.ttl, p));
        Ok(token)
    }

    /// Take the request of `token` if it exists and has not expired (it is gone afterwards).
    pub fn consume(&self, token: &str) -> Option<Pending> {
        let mut m = self.map.lock().unwrap_or_else(|e| e.into_inner());
        let (expires, p) = m.remove(token)?;
        (expires > Instant::now()).then_some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ExecRequest;

    fn req() -> Pending {
        Pending::Exec(ExecRequest::default())
    }

    #[test]
    fn single_use() {
        let t = Tokens::new(Duration::from_secs(60), 10);
        let a = t.insert(req()).unwrap();
        let b = t.insert(req()).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
        assert!(t.consume(&a).is_some());
        assert!(t.consume(&a).is_none());
        assert!(t.consume("forged").is_none());
        assert!(t.consume(&b).is_some());
    }

    #[test]
    fn expired_tokens_are_refused_and_freed() {
        let t = Tokens::new(Duration::from_millis(0), 1);
        let a = t.insert(req()).unwrap();
        assert!(t.consume(&a).is_none());
        // The expired one does not count against the limit.
        let _ = t.insert(req()).unwrap();
        let _ = t.insert(req()).unwrap();
    }

    #[test]
    fn bounded() {
        let t = Tokens::new(Duration::from_secs(60), 2);
        t.insert(req()).unwrap();
        t.insert(req()).unwrap();
        assert!(matches!(
            t.insert(req()),
            Err(StreamError::TooManyRequests(2))
        ));
    }
}
