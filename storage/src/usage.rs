//! What the database takes on disk, by column family: for `taksa db-stats` and the benchmark's
//! bytes per transfer. Also the flush a clean stop runs, so that a stopped node's folder holds
//! sorted, compressed tables rather than a write-ahead log to replay.

use std::fs;
use std::path::Path;

use crate::db::Db;
use crate::schema::{parse_head_value, CF_META, COLUMN_FAMILIES, META_HEAD, META_TXS_TOTAL};
use crate::{StorageError, Store};

/// One column family's share of the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColumnUsage {
    /// The column family.
    pub name: &'static str,
    /// Bytes in its sorted tables (SST files) on disk.
    pub sst_bytes: u64,
    /// Bytes in its memtables, written only to the write-ahead log so far.
    pub memtable_bytes: u64,
    /// RocksDB's estimate of its live keys.
    pub keys_estimate: u64,
}

/// The database's disk use, by column family and by kind of file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskUsage {
    /// Every column family the store uses, in schema order.
    pub columns: Vec<ColumnUsage>,
    /// Bytes in write-ahead log files (`NNNNNN.log`): writes not yet in sorted tables.
    pub wal_bytes: u64,
    /// Bytes in every other file of the folder: RocksDB's manifest, options and info logs.
    pub other_bytes: u64,
    /// Every byte in the folder.
    pub folder_bytes: u64,
    /// The finalized head's height.
    pub head_height: u64,
    /// Transactions committed since genesis.
    pub txs_total: u64,
}

impl DiskUsage {
    /// Measures the Taksa database in `path`, which no running node may hold. With `compact`, it
    /// first flushes every memtable and compacts every column family, which is what a
    /// long-running node's tables converge to. Refuses a folder without a database rather than
    /// creating one.
    pub fn measure(path: &Path, compact: bool) -> Result<DiskUsage, StorageError> {
        let db = Db::open_existing(path)?;
        if compact {
            compact_all(&db)?;
        }
        measure(&db)
    }
}

impl Store {
    /// Writes every memtable to sorted tables and fsyncs them, so the write-ahead log can go:
    /// what a clean stop runs. Everything was already durable in the log; this only makes the
    /// next open replay nothing and the folder hold compressed tables.
    pub fn flush(&self) -> Result<(), StorageError> {
        flush_all(self.db())
    }

    /// This database's disk use (see [`DiskUsage::measure`]).
    pub fn disk_usage(&self) -> Result<DiskUsage, StorageError> {
        measure(self.db())
    }
}

fn flush_all(db: &Db) -> Result<(), StorageError> {
    let cfs = COLUMN_FAMILIES.iter().map(|name| db.cf(name)).collect::<Result<Vec<_>, _>>()?;
    db.db
        .flush_cfs_opt(&cfs, &rocksdb::FlushOptions::default())
        .map_err(|source| StorageError::Db { op: "flush", source })
}

fn compact_all(db: &Db) -> Result<(), StorageError> {
    flush_all(db)?;
    // Rewrite even a single table at the bottom level, which is what drops deleted entries.
    let mut opts = rocksdb::CompactOptions::default();
    opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
    for name in COLUMN_FAMILIES {
        db.db.compact_range_cf_opt(db.cf(name)?, None::<&[u8]>, None::<&[u8]>, &opts);
    }
    Ok(())
}

fn measure(db: &Db) -> Result<DiskUsage, StorageError> {
    let property = |cf, name: &str| -> Result<u64, StorageError> {
        let value = db.db.property_int_value_cf(cf, name).map_err(|source| StorageError::Db { op: "read", source })?;
        Ok(value.unwrap_or(0))
    };
    let mut columns = Vec::with_capacity(COLUMN_FAMILIES.len());
    for name in COLUMN_FAMILIES {
        let cf = db.cf(name)?;
        columns.push(ColumnUsage {
            name,
            sst_bytes: property(cf, "rocksdb.total-sst-files-size")?,
            memtable_bytes: property(cf, "rocksdb.cur-size-all-mem-tables")?,
            keys_estimate: property(cf, "rocksdb.estimate-num-keys")?,
        });
    }
    let (mut wal_bytes, mut other_bytes, mut folder_bytes) = (0u64, 0u64, 0u64);
    let io = |source| StorageError::Io { path: db.path.clone(), source };
    for entry in fs::read_dir(&db.path).map_err(io)? {
        let entry = entry.map_err(io)?;
        let meta = entry.metadata().map_err(io)?;
        if !meta.is_file() {
            continue;
        }
        let len = meta.len();
        folder_bytes = folder_bytes.saturating_add(len);
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_wal(&name) {
            wal_bytes = wal_bytes.saturating_add(len);
        } else if !name.ends_with(".sst") {
            other_bytes = other_bytes.saturating_add(len);
        }
    }
    let head_height = db.get(CF_META, META_HEAD)?.as_deref().and_then(parse_head_value).map_or(0, |(height, _)| height);
    let txs_total = db
        .get(CF_META, META_TXS_TOTAL)?
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map_or(0, u64::from_be_bytes);
    Ok(DiskUsage { columns, wal_bytes, other_bytes, folder_bytes, head_height, txs_total })
}

/// A write-ahead log file: digits then `.log` (RocksDB's info log is `LOG`, without digits).
fn is_wal(name: &str) -> bool {
    name.strip_suffix(".log").is_some_and(|stem| !stem.is_empty() && stem.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_files_are_numbered_logs_and_the_info_log_is_not() {
        assert!(is_wal("000004.log"));
        assert!(!is_wal("LOG"));
        assert!(!is_wal("LOG.old.1700000000"));
        assert!(!is_wal(".log"));
        assert!(!is_wal("000007.sst"));
    }
}
