//! The exporter's PostgreSQL side: the schema, the stored cursor, and writing whole blocks with
//! the new cursor in one database transaction.
//!
//! Exactly once comes from that one transaction: the rows of a block and the cursor after it
//! commit together or not at all, so after any crash the stored cursor names exactly what the
//! tables hold, and the stream resumes right after it. The cursor row is also a compare-and-swap
//! (`WHERE cursor IS NOT DISTINCT FROM` the one this exporter read): a second exporter pointed at
//! the same database by mistake fails its write instead of doubling rows.

use std::time::Duration;

use anyhow::{bail, Context as _};
use tokio_postgres::{Client, Config, NoTls};

use super::assemble::{ExportBlock, Tip};

/// Bumped when the tables change shape; an older exporter refuses a newer database.
const SCHEMA_VERSION: i32 = 1;

/// The tables and indexes, in the `taksa` schema. Amounts are base units (`numeric`, exact);
/// `time` is the block's timestamp, for queries by date.
pub(crate) const SCHEMA_SQL: &str = "
CREATE SCHEMA IF NOT EXISTS taksa;
CREATE TABLE IF NOT EXISTS taksa.export_state (
    singleton      boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    schema_version integer NOT NULL,
    genesis_hash   text NOT NULL,
    chain_id       text NOT NULL,
    cursor         text,
    height         bigint,
    block_hash     text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS taksa.blocks (
    height       bigint PRIMARY KEY,
    hash         text NOT NULL UNIQUE,
    parent_hash  text NOT NULL,
    view         bigint NOT NULL,
    proposer     text NOT NULL,
    timestamp_ms bigint NOT NULL,
    time         timestamptz NOT NULL,
    tx_count     integer NOT NULL,
    fees         numeric(39, 0) NOT NULL,
    state_root   text NOT NULL,
    cursor       text NOT NULL UNIQUE
);
CREATE INDEX IF NOT EXISTS blocks_time ON taksa.blocks (time);
CREATE TABLE IF NOT EXISTS taksa.transfers (
    height       bigint NOT NULL REFERENCES taksa.blocks (height),
    tx_index     integer NOT NULL,
    hash         text NOT NULL UNIQUE,
    from_address text NOT NULL,
    to_address   text NOT NULL,
    amount       numeric(39, 0) NOT NULL,
    fee          numeric(39, 0) NOT NULL,
    nonce        numeric(20, 0) NOT NULL,
    memo         text,
    memo_raw     bytea,
    from_balance numeric(39, 0) NOT NULL,
    to_balance   numeric(39, 0) NOT NULL,
    timestamp_ms bigint NOT NULL,
    time         timestamptz NOT NULL,
    cursor       text NOT NULL UNIQUE,
    PRIMARY KEY (height, tx_index)
);
CREATE INDEX IF NOT EXISTS transfers_from ON taksa.transfers (from_address, height DESC, tx_index DESC);
CREATE INDEX IF NOT EXISTS transfers_to ON taksa.transfers (to_address, height DESC, tx_index DESC);
CREATE INDEX IF NOT EXISTS transfers_time ON taksa.transfers (time);
CREATE INDEX IF NOT EXISTS transfers_amount ON taksa.transfers (amount);
";

const INSERT_BLOCKS: &str = "
INSERT INTO taksa.blocks
    (height, hash, parent_hash, view, proposer, timestamp_ms, time, tx_count, fees, state_root, cursor)
SELECT h, hs, ph, v, p, ts, to_timestamp(ts / 1000.0), tc, f::numeric, sr, c
FROM unnest($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::integer[],
            $8::text[], $9::text[], $10::text[]) AS b(h, hs, ph, v, p, ts, tc, f, sr, c)";

const INSERT_TRANSFERS: &str = "
INSERT INTO taksa.transfers
    (height, tx_index, hash, from_address, to_address, amount, fee, nonce, memo, memo_raw, from_balance,
     to_balance, timestamp_ms, time, cursor)
SELECT h, i, hs, fa, ta, a::numeric, f::numeric, n::numeric, m, mr, fb::numeric, tb::numeric, ts,
       to_timestamp(ts / 1000.0), c
FROM unnest($1::bigint[], $2::integer[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[],
            $8::text[], $9::text[], $10::bytea[], $11::text[], $12::text[], $13::bigint[], $14::text[])
     AS t(h, i, hs, fa, ta, a, f, n, m, mr, fb, tb, ts, c)";

/// Why a write failed.
#[derive(Debug)]
pub(crate) enum WriteError {
    /// The database refused the data (SQLSTATE classes 22 and 23: a value out of range, a
    /// duplicate key): the node sent it, so the exporter goes on with another node.
    Data(anyhow::Error),
    /// The database failed or went away: reconnect and read the position again.
    Database(anyhow::Error),
}

impl WriteError {
    fn of(e: tokio_postgres::Error, what: &str) -> WriteError {
        let data = e.code().is_some_and(|c| c.code().starts_with("22") || c.code().starts_with("23"));
        let e = anyhow::Error::new(e).context(what.to_owned());
        if data {
            WriteError::Data(e)
        } else {
            WriteError::Database(e)
        }
    }
}

/// A state of the database the exporter must not write past: the operator has to act.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fatal(pub(crate) String);

/// Where the database stands: the chain it holds and the last block written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// The cursor of the last block written; `None` before the first.
    pub(crate) cursor: Option<String>,
    /// That block.
    pub(crate) tip: Option<Tip>,
}

/// The chain a database holds, recorded by the first export into it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Chain {
    /// Its genesis hash (`0x…`).
    pub(crate) genesis_hash: String,
    /// Its chain id.
    pub(crate) chain_id: String,
}

/// One connection to the database.
pub(crate) struct Database {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    /// The tables exist: created (or found) once per connection, not at every session.
    schema_ready: bool,
}

impl Drop for Database {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Database {
    /// Connects (`postgres://user:password@host:port/database`, or the key=value form), with a
    /// connect timeout unless the URL sets one. No TLS: run the exporter beside the database or
    /// through a TLS tunnel.
    pub(crate) async fn connect(url: &str) -> anyhow::Result<Database> {
        let mut config: Config = url.parse().context("the --database URL is not a PostgreSQL connection string")?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("taksa-export");
        let (client, connection) = config.connect(NoTls).await.context("cannot connect to the database")?;
        let connection = tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "database connection closed");
            }
        });
        Ok(Database { client, connection, schema_ready: false })
    }

    /// Creates the tables if needed and reads the position and the chain the database holds: the
    /// first run records `genesis_hash` and `chain_id`, so the caller can refuse another chain's node.
    pub(crate) async fn open(&mut self, genesis_hash: &str, chain_id: &str) -> anyhow::Result<(Position, Chain)> {
        let tx = self.client.transaction().await?;
        // Two exporters starting at once on an empty database: one creates, the other waits.
        if !self.schema_ready {
            tx.execute("SELECT pg_advisory_xact_lock(7331)", &[]).await?;
            tx.batch_execute(SCHEMA_SQL).await.context("creating the tables")?;
        }
        tx.execute(
            "INSERT INTO taksa.export_state (schema_version, genesis_hash, chain_id) VALUES ($1, $2, $3)
             ON CONFLICT (singleton) DO NOTHING",
            &[&SCHEMA_VERSION, &genesis_hash, &chain_id],
        )
        .await?;
        let row = tx
            .query_one(
                "SELECT schema_version, genesis_hash, chain_id, cursor, height, block_hash FROM taksa.export_state",
                &[],
            )
            .await?;
        tx.commit().await?;
        self.schema_ready = true;
        let version: i32 = row.get(0);
        if version != SCHEMA_VERSION {
            return Err(Fatal(format!(
                "the database's tables are version {version}; this exporter writes version {SCHEMA_VERSION}: use the \
                 taksa that made them, or export into a new database"
            ))
            .into());
        }
        let chain = Chain { genesis_hash: row.get(1), chain_id: row.get(2) };
        Ok((position(row.get(3), row.get(4), row.get(5))?, chain))
    }

    /// Writes `blocks` (which extend `from`) and the cursor after the last of them in one
    /// transaction. Fails, writing nothing, if the stored cursor is no longer `from`'s.
    pub(crate) async fn write(&mut self, from: &Position, blocks: &[ExportBlock]) -> Result<Position, WriteError> {
        let Some(last) = blocks.last() else { return Ok(from.clone()) };
        let b = BlockColumns::new(blocks).map_err(WriteError::Data)?;
        let t = TransferColumns::new(blocks).map_err(WriteError::Data)?;
        let height = i64::try_from(last.block.height).map_err(|e| WriteError::Data(e.into()))?;
        let tx = self.client.transaction().await.map_err(|e| WriteError::of(e, "BEGIN"))?;
        let moved = tx
            .execute(
                "UPDATE taksa.export_state SET cursor = $1, height = $2, block_hash = $3, updated_at = now()
                 WHERE cursor IS NOT DISTINCT FROM $4",
                &[&last.block.cursor, &height, &last.block.hash, &from.cursor],
            )
            .await
            .map_err(|e| WriteError::of(e, "moving the cursor"))?;
        if moved != 1 {
            return Err(WriteError::Database(anyhow::anyhow!(
                "the database's cursor moved under this exporter: is another exporter writing to it?"
            )));
        }
        tx.execute(
            INSERT_BLOCKS,
            &[&b.height, &b.hash, &b.parent, &b.view, &b.proposer, &b.ts, &b.tx_count, &b.fees, &b.root, &b.cursor],
        )
        .await
        .map_err(|e| WriteError::of(e, "inserting blocks"))?;
        if !t.height.is_empty() {
            tx.execute(
                INSERT_TRANSFERS,
                &[
                    &t.height,
                    &t.index,
                    &t.hash,
                    &t.from,
                    &t.to,
                    &t.amount,
                    &t.fee,
                    &t.nonce,
                    &t.memo,
                    &t.memo_raw,
                    &t.from_balance,
                    &t.to_balance,
                    &t.ts,
                    &t.cursor,
                ],
            )
            .await
            .map_err(|e| WriteError::of(e, "inserting transfers"))?;
        }
        tx.commit().await.map_err(|e| WriteError::of(e, "COMMIT"))?;
        Ok(Position {
            cursor: Some(last.block.cursor.clone()),
            tip: Some(Tip { height: last.block.height, hash: last.block.hash.clone() }),
        })
    }
}

fn position(cursor: Option<String>, height: Option<i64>, hash: Option<String>) -> anyhow::Result<Position> {
    match (cursor, height, hash) {
        (None, None, None) => Ok(Position { cursor: None, tip: None }),
        (Some(cursor), Some(height), Some(hash)) => Ok(Position {
            cursor: Some(cursor),
            tip: Some(Tip { height: u64::try_from(height).context("negative height in export_state")?, hash }),
        }),
        _ => Err(Fatal(
            "taksa.export_state is half filled (edited by hand?): restore it, or DROP SCHEMA taksa CASCADE and export \
             again"
                .into(),
        )
        .into()),
    }
}

fn to_i64(v: u64, what: &str) -> anyhow::Result<i64> {
    i64::try_from(v).with_context(|| format!("{what} {v} beyond bigint"))
}

fn to_i32(v: u32, what: &str) -> anyhow::Result<i32> {
    i32::try_from(v).with_context(|| format!("{what} {v} beyond integer"))
}

/// The blocks as one array per column, for one `INSERT … SELECT FROM unnest(…)`.
#[derive(Default)]
struct BlockColumns {
    height: Vec<i64>,
    hash: Vec<String>,
    parent: Vec<String>,
    view: Vec<i64>,
    proposer: Vec<String>,
    ts: Vec<i64>,
    tx_count: Vec<i32>,
    fees: Vec<String>,
    root: Vec<String>,
    cursor: Vec<String>,
}

impl BlockColumns {
    fn new(blocks: &[ExportBlock]) -> anyhow::Result<BlockColumns> {
        let mut c = BlockColumns::default();
        for ExportBlock { block: b, .. } in blocks {
            c.height.push(to_i64(b.height, "height")?);
            c.hash.push(b.hash.clone());
            c.parent.push(b.parent_hash.clone());
            c.view.push(to_i64(b.view, "view")?);
            c.proposer.push(b.proposer.clone());
            c.ts.push(to_i64(b.timestamp_ms, "timestamp")?);
            c.tx_count.push(to_i32(b.tx_count, "tx count")?);
            c.fees.push(amount(&b.fees)?);
            c.root.push(b.state_root.clone());
            c.cursor.push(b.cursor.clone());
        }
        Ok(c)
    }
}

/// The transfers of the blocks as one array per column.
#[derive(Default)]
struct TransferColumns {
    height: Vec<i64>,
    index: Vec<i32>,
    hash: Vec<String>,
    from: Vec<String>,
    to: Vec<String>,
    amount: Vec<String>,
    fee: Vec<String>,
    nonce: Vec<String>,
    memo: Vec<Option<String>>,
    memo_raw: Vec<Option<Vec<u8>>>,
    from_balance: Vec<String>,
    to_balance: Vec<String>,
    ts: Vec<i64>,
    cursor: Vec<String>,
}

impl TransferColumns {
    fn new(blocks: &[ExportBlock]) -> anyhow::Result<TransferColumns> {
        let mut c = TransferColumns::default();
        for n in blocks.iter().flat_map(|b| &b.transfers) {
            let t = &n.transfer;
            c.height.push(to_i64(n.height, "height")?);
            c.index.push(to_i32(n.index, "index")?);
            c.hash.push(t.hash.clone());
            c.from.push(t.from.clone());
            c.to.push(t.to.clone());
            c.amount.push(amount(&t.amount)?);
            c.fee.push(amount(&t.fee)?);
            c.nonce.push(t.nonce.to_string());
            // PostgreSQL's text cannot hold U+0000, which a memo may: `memo` shows it as U+FFFD,
            // `memo_raw` keeps the exact bytes.
            c.memo.push(t.memo.as_ref().map(|m| m.replace('\0', "\u{FFFD}")));
            c.memo_raw.push(t.memo.as_ref().map(|m| m.as_bytes().to_vec()));
            c.from_balance.push(amount(&t.from_balance)?);
            c.to_balance.push(amount(&t.to_balance)?);
            c.ts.push(to_i64(t.timestamp_ms, "timestamp")?);
            c.cursor.push(n.cursor.clone());
        }
        Ok(c)
    }
}

/// An amount as the node sends it (base units, decimal digits), checked before PostgreSQL casts
/// it: a node must not be able to make the exporter store `NaN` or a fraction.
fn amount(s: &str) -> anyhow::Result<String> {
    match s.parse::<u128>() {
        Ok(v) => Ok(v.to_string()),
        Err(_) => {
            bail!("the node sent amount {:?}, not a whole number of base units", s.chars().take(80).collect::<String>())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_must_be_whole_base_units() {
        assert_eq!(amount("340282366920938463463374607431768211455").expect("u128::MAX"), u128::MAX.to_string());
        for bad in ["NaN", "1.5", "-1", "", "1e3", " 1", "340282366920938463463374607431768211456"] {
            assert!(amount(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_half_filled_position_is_refused() {
        assert_eq!(position(None, None, None).expect("empty"), Position { cursor: None, tip: None });
        assert!(position(Some("01".into()), None, Some("0x".into())).is_err());
        assert!(position(Some("01".into()), Some(-1), Some("0x".into())).is_err());
    }
}
