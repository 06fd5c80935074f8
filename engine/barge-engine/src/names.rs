//! Container ids (64 hex digits, like docker's) and generated names (`adjective_noun`).

use std::io::Read;

use crate::error::{Error, Result};

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|source| Error::Io {
            what: "read",
            path: "/dev/urandom".into(),
            source,
        })?;
    Ok(b)
}

pub fn new_id() -> Result<String> {
    Ok(hex_of(&random_bytes::<32>()?))
}

pub(crate) fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "cool", "eager", "fast", "gentle", "happy",
    "jolly", "keen", "kind", "lucid", "merry", "nimble", "proud", "quiet", "quick", "sharp",
    "silent", "steady", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty", "zen",
];
const NOUNS: &[&str] = &[
    "anchor", "barge", "beacon", "buoy", "canal", "cargo", "deck", "delta", "dock", "ferry",
    "fjord", "harbor", "hull", "island", "jetty", "keel", "lagoon", "lock", "mast", "mooring",
    "oar", "pier", "port", "quay", "raft", "reef", "river", "rudder", "sail", "tide",
];

/// A random `adjective_noun_NNNN` name.
pub fn random_name() -> Result<String> {
    let b = random_bytes::<4>()?;
    Ok(format!(
        "{}_{}_{}",
        ADJECTIVES[b[0] as usize % ADJECTIVES.len()],
        NOUNS[b[1] as usize % NOUNS.len()],
        u16::from_le_bytes([b[2], b[3]]) % 10000
    ))
}

/// A random name that `taken` says is free: docker's generator retries the same way (with
/// 30 x 30 x 10 000 names, a store of a thousand containers has a few percent chance that a
/// single draw collides). After 10 taken draws the error is `taken`'s Conflict.
pub fn random_free_name(taken: impl Fn(&str) -> Result<bool>) -> Result<String> {
    let mut last = String::new();
    for _ in 0..10 {
        let name = random_name()?;
        if !taken(&name)? {
            return Ok(name);
        }
        last = name;
    }
    Err(Error::Conflict(format!(
        "no free generated name after 10 draws (last {last:?}): give a name"
    )))
}

/// Docker's rule for names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.len() >= 2
        && name.len() <= 128
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "invalid container name {name:?}: only [a-zA-Z0-9][a-zA-Z0-9_.-]+ are allowed"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names() {
        let a = new_id().unwrap();
        assert_eq!(a.len(), 64);
        assert_ne!(a, new_id().unwrap());
        validate(&random_name().unwrap()).unwrap();
        assert!(validate("-x").is_err());
        assert!(validate("a/b").is_err());
        assert!(validate("x").is_err());
        validate("web.1_a-b").unwrap();
    }

    #[test]
    fn generated_names_skip_taken_ones() {
        let seen = std::cell::RefCell::new(Vec::new());
        let name = random_free_name(|n| {
            seen.borrow_mut().push(n.to_string());
            Ok(seen.borrow().len() < 3)
        })
        .unwrap();
        assert_eq!(seen.borrow().len(), 3);
        assert_eq!(seen.borrow()[2], name);
        let e = random_free_name(|_| Ok(true)).unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Conflict, "{e}");
    }
}
