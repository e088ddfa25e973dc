//! The RocksDB handle: opening the folder with the right options and refusing what is not ours,
//! plus typed reads that turn a missing column family or an undecodable value into
//! [`StorageError::Corrupt`].

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bincode::Decode;
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, Options, WriteBatch, WriteOptions, DB,
};
use taksa_consensus::codec;

use crate::schema::{state_history_height, CF_DEFAULT, CF_DROPPED, CF_STATE_HISTORY, CF_TXS, COLUMN_FAMILIES};
use crate::StorageError;

/// Memtable size per column family. Small values dominate, so a modest buffer keeps flushes
/// rare without holding much memory.
const WRITE_BUFFER_BYTES: usize = 32 * 1024 * 1024;
/// Cap on all memtables together.
const DB_WRITE_BUFFER_BYTES: usize = 128 * 1024 * 1024;
/// Cap on the write-ahead log: past it, the column families holding its oldest writes are
/// flushed so it can go. RocksDB's default (four times every memtable's size) lets a column
/// family with few writes, such as the summaries, keep gigabytes of log alive.
const WAL_BYTES_MAX: u64 = 2 * DB_WRITE_BUFFER_BYTES as u64;
/// Open SST files kept in RocksDB's table cache.
const OPEN_FILES_MAX: i32 = 512;
/// Info logs kept in the folder.
const LOG_FILES_KEPT: usize = 5;

/// An open database and the folder it lives in (for error messages).
pub(crate) struct Db {
    pub(crate) db: DB,
    pub(crate) path: PathBuf,
}

fn options() -> Options {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
    opts.set_db_write_buffer_size(DB_WRITE_BUFFER_BYTES);
    opts.set_max_total_wal_size(WAL_BYTES_MAX);
    opts.set_compression_type(DBCompressionType::Lz4);
    opts.set_max_open_files(OPEN_FILES_MAX);
    opts.set_keep_log_file_num(LOG_FILES_KEPT);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    opts.increase_parallelism(i32::try_from(cores).unwrap_or(2));
    opts
}

/// The share of a memtable's size given to its Bloom filter (RocksDB suggests up to 0.25).
const MEMTABLE_BLOOM_RATIO: f64 = 0.1;
/// Bloom filter bits per key: about 1 % false positives, 1.25 bytes per key on disk.
const BLOOM_BITS_PER_KEY: f64 = 10.0;

/// A column family's options. Those looked up by transaction hash get a Bloom filter: every
/// submitted transaction is first looked up there (is it committed already?), almost always in
/// vain, and without a filter each such lookup reads a data block of every table.
fn cf_options(name: &str, history_below: &Arc<AtomicU64>) -> Options {
    let mut opts = options();
    if name == CF_STATE_HISTORY {
        // Entries below the kept window go as compaction reaches them; until then no query
        // reads them (a past height is answered from the entries after it).
        let below = Arc::clone(history_below);
        opts.set_compaction_filter("taksa-state-history-window", move |_, key: &[u8], _: &[u8]| {
            match state_history_height(key) {
                Some(h) if h < below.load(Ordering::Relaxed) => rocksdb::compaction_filter::Decision::Remove,
                _ => rocksdb::compaction_filter::Decision::Keep,
            }
        });
    }
    if name == CF_TXS || name == CF_DROPPED {
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);
        opts.set_block_based_table_factory(&table);
        // And one over the memtable, where the newest blocks' hashes wait to be flushed.
        opts.set_memtable_whole_key_filtering(true);
        opts.set_memtable_prefix_bloom_ratio(MEMTABLE_BLOOM_RATIO);
    }
    opts
}

impl Db {
    /// Opens (creating if needed) the database in `path`, refusing a folder that holds anything
    /// else and a database that holds column families the store does not know.
    pub(crate) fn open(path: &Path) -> Result<Db, StorageError> {
        Db::open_with(path, &Arc::new(AtomicU64::new(0)))
    }

    /// [`Db::open`], dropping state-history entries below `history_below` as they compact.
    pub(crate) fn open_with(path: &Path, history_below: &Arc<AtomicU64>) -> Result<Db, StorageError> {
        let existing = check_folder(path)?;
        let opts = options();
        if existing {
            let found = DB::list_cf(&opts, path).map_err(|source| open_error(path, source))?;
            let unknown: Vec<&String> = found
                .iter()
                .filter(|cf| cf.as_str() != CF_DEFAULT && !COLUMN_FAMILIES.contains(&cf.as_str()))
                .collect();
            if !unknown.is_empty() {
                return Err(StorageError::NotADatabase {
                    path: path.to_owned(),
                    why: format!("it is a RocksDB database with column families {unknown:?} that Taksa does not use"),
                });
            }
        }
        let cfs =
            COLUMN_FAMILIES.iter().map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name, history_below)));
        let db = DB::open_cf_descriptors(&opts, path, cfs).map_err(|source| open_error(path, source))?;
        Ok(Db { db, path: path.to_owned() })
    }

    /// Opens the Taksa database in `path` for an offline tool, refusing a folder that holds
    /// none, or another program's RocksDB database, rather than creating anything there.
    pub(crate) fn open_existing(path: &Path) -> Result<Db, StorageError> {
        let refuse = |why: &str| StorageError::NotADatabase { path: path.to_owned(), why: why.to_owned() };
        if !path.join("CURRENT").is_file() {
            return Err(refuse("it holds no database (no CURRENT file); pass the node's --data-dir"));
        }
        if !has_every_column_family(path)? {
            return Err(refuse("it is a RocksDB database without Taksa's column families"));
        }
        Db::open(path)
    }

    /// A column family handle.
    pub(crate) fn cf(&self, name: &'static str) -> Result<&ColumnFamily, StorageError> {
        self.db.cf_handle(name).ok_or_else(|| self.corrupt(format!("column family `{name}` is missing")))
    }

    /// The raw value at `key` in `cf`.
    pub(crate) fn get(&self, cf: &'static str, key: &[u8]) -> Result<Option<Vec<u8>>, StorageError> {
        self.db.get_cf(self.cf(cf)?, key).map_err(|source| StorageError::Db { op: "read", source })
    }

    /// Runs `f` on the value at `key` in `cf` where RocksDB keeps it, without copying it.
    pub(crate) fn with_pinned<T>(
        &self,
        cf: &'static str,
        key: &[u8],
        f: impl FnOnce(&[u8]) -> T,
    ) -> Result<Option<T>, StorageError> {
        let pinned =
            self.db.get_pinned_cf(self.cf(cf)?, key).map_err(|source| StorageError::Db { op: "read", source })?;
        Ok(pinned.map(|bytes| f(&bytes)))
    }

    /// The value at `key` in `cf`, decoded with `limit_bytes`; `what` names it in errors.
    pub(crate) fn get_decoded<T: Decode<()>>(
        &self,
        cf: &'static str,
        key: &[u8],
        limit_bytes: usize,
        what: impl FnOnce() -> String,
    ) -> Result<Option<T>, StorageError> {
        match self.db.get_pinned_cf(self.cf(cf)?, key).map_err(|source| StorageError::Db { op: "read", source })? {
            None => Ok(None),
            Some(bytes) => self.decode(&bytes, limit_bytes, what).map(Some),
        }
    }

    /// Decodes a stored value; failure is corruption.
    pub(crate) fn decode<T: Decode<()>>(
        &self,
        bytes: &[u8],
        limit_bytes: usize,
        what: impl FnOnce() -> String,
    ) -> Result<T, StorageError> {
        codec::decode(bytes, limit_bytes).map_err(|e| self.corrupt(format!("{} does not decode: {e}", what())))
    }

    /// Writes a batch, fsyncing the write-ahead log first when `sync`.
    pub(crate) fn write(&self, batch: WriteBatch, sync: bool) -> Result<(), StorageError> {
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts).map_err(|source| StorageError::Db { op: "write", source })
    }

    /// A corruption error for this folder.
    pub(crate) fn corrupt(&self, what: String) -> StorageError {
        StorageError::Corrupt { path: self.path.clone(), what }
    }
}

/// Checks what is at `path`: nothing (created), an empty folder, or a RocksDB folder. Returns
/// whether a database already exists there.
fn check_folder(path: &Path) -> Result<bool, StorageError> {
    let io = |source| StorageError::Io { path: path.to_owned(), source };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(io)?;
            return Ok(false);
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_dir() {
        return Err(StorageError::NotADatabase { path: path.to_owned(), why: "it is a file, not a folder".into() });
    }
    if path.join("CURRENT").is_file() {
        return Ok(true);
    }
    if fs::read_dir(path).map_err(io)?.next().is_none() {
        return Ok(false);
    }
    Err(StorageError::NotADatabase {
        path: path.to_owned(),
        why: "the folder holds other files and no RocksDB database (no CURRENT file)".into(),
    })
}

/// Whether `path` may be deleted to start over: it is missing, an empty folder, or a Taksa
/// database (a RocksDB database holding every column family the store makes). Anything else
/// (a home folder passed by mistake, another program's database) is refused.
pub(crate) fn check_resettable(path: &Path) -> Result<(), StorageError> {
    let io = |source| StorageError::Io { path: path.to_owned(), source };
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(e)),
    };
    let refuse = |why: &str| StorageError::NotADatabase { path: path.to_owned(), why: why.to_owned() };
    if !meta.is_dir() {
        return Err(refuse("it is a file, not a folder"));
    }
    if fs::read_dir(path).map_err(io)?.next().is_none() {
        return Ok(());
    }
    if !path.join("CURRENT").is_file() {
        return Err(refuse("the folder holds other files and no RocksDB database (no CURRENT file)"));
    }
    if has_every_column_family(path)? {
        Ok(())
    } else {
        Err(refuse("it is a RocksDB database without Taksa's column families"))
    }
}

/// Whether the RocksDB database in `path` holds every column family the store makes.
fn has_every_column_family(path: &Path) -> Result<bool, StorageError> {
    let found = DB::list_cf(&options(), path).map_err(|source| open_error(path, source))?;
    Ok(COLUMN_FAMILIES.iter().all(|cf| found.iter().any(|f| f == cf)))
}

/// Tells a lock held by another process (or another handle in this one) from other failures.
fn open_error(path: &Path, source: rocksdb::Error) -> StorageError {
    let text = source.to_string().to_ascii_lowercase();
    if text.contains("lock") {
        StorageError::Locked { path: path.to_owned(), source }
    } else {
        StorageError::Open { path: path.to_owned(), source }
    }
}
