//! The bundled SQLite is built as .cargo/config.toml says (LIBSQLITE3_FLAGS): no page-cache
//! block or lookaside arena allocated up front per connection (memory of every `barge`
//! command), none of the unused extensions.

#[test]
fn bundled_sqlite_has_barges_compile_options() {
    let conn = rusqlite::Connection::open_in_memory().unwrap();
    let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
    let opts: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for want in ["DEFAULT_PCACHE_INITSZ=0", "DEFAULT_LOOKASIDE=0,0"] {
        assert!(opts.iter().any(|o| o == want), "{want} missing: {opts:?}");
    }
    for unwanted in [
        "ENABLE_FTS3",
        "ENABLE_FTS5",
        "ENABLE_RTREE",
        "ENABLE_DBSTAT_VTAB",
    ] {
        assert!(
            !opts.iter().any(|o| o == unwanted),
            "{unwanted} set: {opts:?}"
        );
    }
}
