//! Disk use by column family, and the flush a clean stop runs.

use taksa_storage::DiskUsage;

use crate::support::Chain;

#[test]
fn flush_moves_the_write_ahead_log_into_tables_and_usage_counts_the_chain() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut chain = Chain::new();
    let store = chain.open(dir.path());
    for _ in 0..5 {
        chain.commit_next(&store, &[(0, 1, 10), (1, 2, 20)]);
    }
    let before = store.disk_usage().expect("measures");
    assert_eq!((before.head_height, before.txs_total), (5, 10));
    let blocks = before.columns.iter().find(|c| c.name == "blocks").expect("blocks column");
    assert!(blocks.memtable_bytes > 0 && blocks.sst_bytes == 0, "unflushed blocks are in memory: {blocks:?}");
    assert!(before.wal_bytes > 0, "and in the write-ahead log");

    store.flush().expect("flushes");
    let after = store.disk_usage().expect("measures");
    let blocks = after.columns.iter().find(|c| c.name == "blocks").expect("blocks column");
    assert!(blocks.sst_bytes > 0, "flushed blocks are in tables: {blocks:?}");
    assert!(after.wal_bytes < before.wal_bytes, "the log shrinks: {} -> {}", before.wal_bytes, after.wal_bytes);
    drop(store);

    let measured = DiskUsage::measure(dir.path(), true).expect("measures a closed database");
    assert_eq!((measured.head_height, measured.txs_total), (5, 10));
    eprintln!("{measured:?}");
    let blocks = measured.columns.iter().find(|c| c.name == "blocks").expect("blocks column");
    assert!(blocks.sst_bytes > 0 && blocks.keys_estimate == 6, "genesis and five blocks: {blocks:?}");
    let store = chain.open(dir.path());
    assert_eq!(store.head().height, 5, "the measured database still opens at its head");
}

#[test]
fn measuring_a_folder_without_a_database_refuses_instead_of_creating_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = DiskUsage::measure(dir.path(), false).expect_err("no database");
    assert!(err.to_string().contains("no CURRENT file"), "{err}");
    assert!(std::fs::read_dir(dir.path()).expect("reads").next().is_none(), "nothing created");
}

#[test]
fn measuring_another_programs_database_refuses_and_adds_nothing_to_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, dir.path()).expect("a foreign database");
        db.put(b"theirs", b"1").expect("writes");
    }
    let err = DiskUsage::measure(dir.path(), false).expect_err("not a Taksa database");
    assert!(err.to_string().contains("without Taksa's column families"), "{err}");
    let err = taksa_storage::verify_chain(dir.path(), &mut |_| {}).expect_err("not a Taksa database");
    assert!(err.to_string().contains("without Taksa's column families"), "{err}");
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), dir.path()).expect("lists");
    assert_eq!(cfs, vec!["default".to_owned()], "no column family was created in it");
}
