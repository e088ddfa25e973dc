//! Encrypted key files: one JSON file per key, used for wallet keys and validator keys alike.
//!
//! The secret (the 32-byte ed25519 seed) is encrypted with XChaCha20-Poly1305 under a key
//! stretched from the password by Argon2id (RFC 9106; by default m = 64 MiB, t = 3, p = 1).
//! The associated data binds the file's public fields, so editing any of them makes
//! decryption fail rather than silently weakening or redirecting the key:
//!
//! ```text
//! aad = "taksa/keystore" || u32 LE version || u32 LE mKiB || u32 LE t || u32 LE p
//!       || salt (16 bytes) || address (UTF-8 bech32m)
//! ```
//!
//! After decryption the key's public key must equal both `publicKey` and the address.
//!
//! ```json
//! {"version": 1, "name": "alice", "address": "tks1…", "publicKey": "<64 hex>",
//!  "kdf": {"name": "argon2id", "mKiB": 65536, "t": 3, "p": 1, "salt": "<32 hex>"},
//!  "cipher": {"name": "xchacha20poly1305", "nonce": "<48 hex>"},
//!  "ciphertext": "<96 hex: 32-byte secret + 16-byte tag>", "path": "m/44'/7331'/0'/0'"}
//! ```

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::rngs::OsRng;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use taksa_consensus::{Address, Keypair, PublicKey};
use zeroize::Zeroizing;

use super::prompt::{self, Purpose};

/// The keystore file format version this code writes and reads.
pub(crate) const KEYSTORE_VERSION: u32 = 1;
/// The largest keystore file read, in bytes; real ones are under 1 KiB.
const FILE_BYTES_MAX: u64 = 16 * 1024;
const SALT_BYTES: usize = 16;
const NONCE_BYTES: usize = 24;
const SECRET_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
const AAD_DOMAIN: &[u8] = b"taksa/keystore";
const KDF_NAME: &str = "argon2id";
const CIPHER_NAME: &str = "xchacha20poly1305";
/// The most memory a file may ask Argon2id for, KiB (1 GiB): a hostile file must not exhaust RAM.
const KDF_M_KIB_MAX: u32 = 1024 * 1024;
/// The most passes a file may ask for.
const KDF_T_MAX: u32 = 64;
/// The most lanes a file may ask for.
const KDF_P_MAX: u32 = 64;
/// The longest key name, in bytes.
pub(crate) const NAME_BYTES_MAX: usize = 64;

/// Why a keystore operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeystoreError {
    /// The name is not 1 to 64 of `A-Z a-z 0-9 _ -`.
    #[error("key name `{0}` is not allowed: use 1 to 64 letters, digits, `_` or `-`")]
    BadName(String),
    /// A key with this name exists already.
    #[error("a key file {0} exists already; choose another name")]
    Exists(PathBuf),
    /// No key file with this name.
    #[error("no key file {0}")]
    NotFound(PathBuf),
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a keystore file this code can read.
    #[error("{path} is not a valid keystore file: {why}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The Argon2id parameters are out of bounds.
    #[error("Argon2id parameters m = {m_kib} KiB, t = {t}, p = {p} are out of bounds: {why}")]
    KdfParams {
        /// Memory, KiB.
        m_kib: u32,
        /// Passes.
        t: u32,
        /// Lanes.
        p: u32,
        /// What is wrong.
        why: String,
    },
    /// Decryption failed: the password is wrong or the file was changed.
    #[error("wrong password or corrupted keystore file {0}")]
    WrongPassword(PathBuf),
    /// The decrypted key does not belong to the file's address.
    #[error("corrupted keystore file {0}: the decrypted key does not match its address")]
    KeyMismatch(PathBuf),
}

type Result<T> = std::result::Result<T, KeystoreError>;

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KdfParams {
    /// Memory, KiB.
    pub(crate) m_kib: u32,
    /// Passes over the memory.
    pub(crate) t: u32,
    /// Lanes.
    pub(crate) p: u32,
}

impl KdfParams {
    /// RFC 9106 section 4, second recommended option (64 MiB, 3 passes), with one lane.
    pub(crate) const RFC9106: KdfParams = KdfParams { m_kib: 64 * 1024, t: 3, p: 1 };

    fn argon2(&self) -> Result<Argon2<'static>> {
        let bad = |why: String| KeystoreError::KdfParams { m_kib: self.m_kib, t: self.t, p: self.p, why };
        if self.m_kib > KDF_M_KIB_MAX || self.t > KDF_T_MAX || self.p > KDF_P_MAX {
            return Err(bad(format!("limits are {KDF_M_KIB_MAX} KiB, t {KDF_T_MAX}, p {KDF_P_MAX}")));
        }
        let params = Params::new(self.m_kib, self.t, self.p, Some(SECRET_BYTES)).map_err(|e| bad(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// What a keystore file says about its key without the password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyInfo {
    /// The key's name.
    pub(crate) name: String,
    /// The address as stored (bech32m with the prefix it was created with).
    pub(crate) address: String,
    /// The public key.
    pub(crate) public_key: PublicKey,
    /// The derivation path, when the key came from a mnemonic.
    pub(crate) path: Option<String>,
    /// The file.
    pub(crate) file: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct KeystoreFile {
    version: u32,
    name: String,
    address: String,
    public_key: String,
    kdf: KdfJson,
    cipher: CipherJson,
    ciphertext: String,
    #[serde(default)]
    path: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KdfJson {
    name: String,
    #[serde(rename = "mKiB")]
    m_kib: u32,
    t: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CipherJson {
    name: String,
    nonce: String,
}

/// Checks a key name: 1 to 64 of `A-Z a-z 0-9 _ -`, so it is also a safe file name.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(KeystoreError::BadName(name.chars().take(NAME_BYTES_MAX + 1).collect()))
    }
}

fn aad(version: u32, kdf: &KdfParams, salt: &[u8], address: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_DOMAIN.len() + 16 + salt.len() + address.len());
    out.extend_from_slice(AAD_DOMAIN);
    for v in [version, kdf.m_kib, kdf.t, kdf.p] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(salt);
    out.extend_from_slice(address.as_bytes());
    out
}

fn stretch(password: &str, salt: &[u8], kdf: &KdfParams) -> Result<Zeroizing<[u8; 32]>> {
    let mut key = Zeroizing::new([0u8; 32]);
    kdf.argon2()?
        .hash_password_into(password.as_bytes(), salt, key.as_mut())
        .map_err(|e| KeystoreError::KdfParams { m_kib: kdf.m_kib, t: kdf.t, p: kdf.p, why: e.to_string() })?;
    Ok(key)
}

/// Encrypts `key` into a new file `file` (mode 0600), refusing to replace an existing file.
pub(crate) fn save(
    file: &Path,
    name: &str,
    key: &Keypair,
    path: Option<&str>,
    hrp: &str,
    password: &str,
    kdf: KdfParams,
) -> Result<KeyInfo> {
    check_name(name)?;
    let address = Address::from_public_key(key.public()).to_bech32(hrp);
    let mut salt = [0u8; SALT_BYTES];
    let mut nonce = [0u8; NONCE_BYTES];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut nonce);
    let sym = stretch(password, &salt, &kdf)?;
    let secret = Zeroizing::new(key.seed());
    let aad = aad(KEYSTORE_VERSION, &kdf, &salt, &address);
    let ciphertext = XChaCha20Poly1305::new(sym.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_ref(), aad: &aad })
        .map_err(|_| KeystoreError::Format { path: file.to_owned(), why: "encryption failed".into() })?;
    let doc = KeystoreFile {
        version: KEYSTORE_VERSION,
        name: name.to_owned(),
        address: address.clone(),
        public_key: hex::encode(key.public().0),
        kdf: KdfJson { name: KDF_NAME.into(), m_kib: kdf.m_kib, t: kdf.t, p: kdf.p, salt: hex::encode(salt) },
        cipher: CipherJson { name: CIPHER_NAME.into(), nonce: hex::encode(nonce) },
        ciphertext: hex::encode(ciphertext),
        path: path.map(str::to_owned),
    };
    let mut text = serde_json::to_string_pretty(&doc)
        .map_err(|e| KeystoreError::Format { path: file.to_owned(), why: e.to_string() })?;
    text.push('\n');
    write_new(file, text.as_bytes())?;
    Ok(KeyInfo { name: name.to_owned(), address, public_key: key.public(), path: doc.path, file: file.to_owned() })
}

/// The password of a key file that is not in a keystore (a validator's `--validator-key`):
/// `--password-file`, else `$TAKSA_PASSWORD`, else a hidden prompt (twice when `confirm`).
pub(crate) fn read_password(file: Option<&Path>, confirm: bool) -> anyhow::Result<Zeroizing<String>> {
    let purpose = if confirm { Purpose::Create } else { Purpose::Unlock };
    prompt::password(file, purpose, "the key file")
}

/// Decrypts the key in `file` with `password`.
pub(crate) fn load_keypair(file: &Path, password: &str) -> Result<Keypair> {
    let (doc, info) = read_file(file)?;
    let format = |why: &str| KeystoreError::Format { path: file.to_owned(), why: why.to_owned() };
    let kdf = KdfParams { m_kib: doc.kdf.m_kib, t: doc.kdf.t, p: doc.kdf.p };
    let salt = hex::decode(&doc.kdf.salt).map_err(|_| format("kdf.salt is not hex"))?;
    let nonce: [u8; NONCE_BYTES] =
        hex_array(&doc.cipher.nonce).ok_or_else(|| format("cipher.nonce is not 24 bytes of hex"))?;
    let ciphertext = hex::decode(&doc.ciphertext).map_err(|_| format("ciphertext is not hex"))?;
    if salt.len() != SALT_BYTES || ciphertext.len() != SECRET_BYTES + TAG_BYTES {
        return Err(format("salt or ciphertext has the wrong length"));
    }
    let sym = stretch(password, &salt, &kdf)?;
    let aad = aad(doc.version, &kdf, &salt, &doc.address);
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(sym.as_ref().into())
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ciphertext, aad: &aad })
            .map_err(|_| KeystoreError::WrongPassword(file.to_owned()))?,
    );
    let mut seed = Zeroizing::new([0u8; SECRET_BYTES]);
    if plain.len() != SECRET_BYTES {
        return Err(KeystoreError::KeyMismatch(file.to_owned()));
    }
    seed.copy_from_slice(&plain);
    let key = Keypair::from_seed(&seed);
    if key.public() != info.public_key {
        return Err(KeystoreError::KeyMismatch(file.to_owned()));
    }
    Ok(key)
}

/// Reads a keystore file's public part, without the password.
pub(crate) fn read_info(file: &Path) -> Result<KeyInfo> {
    read_file(file).map(|(_, info)| info)
}

fn read_file(file: &Path) -> Result<(KeystoreFile, KeyInfo)> {
    let io = |source| KeystoreError::Io { path: file.to_owned(), source };
    let format = |why: String| KeystoreError::Format { path: file.to_owned(), why };
    let handle = fs::File::open(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => KeystoreError::NotFound(file.to_owned()),
        _ => io(e),
    })?;
    let mut text = String::new();
    handle.take(FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(io)?;
    if text.len() as u64 > FILE_BYTES_MAX {
        return Err(format(format!("larger than {FILE_BYTES_MAX} bytes")));
    }
    let doc: KeystoreFile = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
    if doc.version != KEYSTORE_VERSION {
        return Err(format(format!("version {} is not supported (this build reads {KEYSTORE_VERSION})", doc.version)));
    }
    if doc.kdf.name != KDF_NAME || doc.cipher.name != CIPHER_NAME {
        return Err(format(format!("kdf `{}` / cipher `{}` are not supported", doc.kdf.name, doc.cipher.name)));
    }
    let public_key =
        PublicKey(hex_array(&doc.public_key).ok_or_else(|| format("publicKey is not 32 bytes of hex".into()))?);
    // The prefix is whatever the file was created with: everything before the last `1`.
    let hrp = doc.address.rsplit_once('1').map_or("", |(h, _)| h);
    let address = Address::parse(&doc.address, hrp).map_err(|e| format(format!("address: {e}")))?;
    if address.0 != public_key {
        return Err(format("address and publicKey disagree".into()));
    }
    let info = KeyInfo {
        name: doc.name.clone(),
        address: doc.address.clone(),
        public_key,
        path: doc.path.clone(),
        file: file.to_owned(),
    };
    Ok((doc, info))
}

fn hex_array<const N: usize>(s: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// Writes `bytes` to a new file `file` with mode 0600 without ever exposing a partial file or
/// replacing an existing one: write a temporary file, fsync, then hard-link it into place
/// (which fails if the name is taken).
fn write_new(file: &Path, bytes: &[u8]) -> Result<()> {
    let io = |path: &Path, source| KeystoreError::Io { path: path.to_owned(), source };
    let dir = file.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let file_name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.{}.{:08x}.tmp", std::process::id(), OsRng.next_u32()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut handle = options.open(&tmp).map_err(|e| io(&tmp, e))?;
    let written = handle.write_all(bytes).and_then(|()| handle.sync_all());
    drop(handle);
    let linked = written.map_err(|e| io(&tmp, e)).and_then(|()| {
        fs::hard_link(&tmp, file).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => KeystoreError::Exists(file.to_owned()),
            _ => io(file, e),
        })
    });
    let _ = fs::remove_file(&tmp);
    linked?;
    // Make the new directory entry durable too.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A folder of keystore files named `<name>.json`.
#[derive(Clone, Debug)]
pub(crate) struct Keystore {
    dir: PathBuf,
}

impl Keystore {
    /// The keystore in `dir` (created on the first save).
    pub(crate) fn new(dir: PathBuf) -> Keystore {
        Keystore { dir }
    }

    /// The folder.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of key `name`.
    pub(crate) fn file_of(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.dir.join(format!("{name}.json")))
    }

    /// Whether a key named `name` exists.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.file_of(name).is_ok_and(|f| f.exists())
    }

    /// Encrypts and stores a new key; refuses a name that exists.
    pub(crate) fn create(
        &self,
        name: &str,
        key: &Keypair,
        path: Option<&str>,
        hrp: &str,
        password: &str,
        kdf: KdfParams,
    ) -> Result<KeyInfo> {
        let file = self.file_of(name)?;
        if file.exists() {
            return Err(KeystoreError::Exists(file));
        }
        self.ensure_dir()?;
        save(&file, name, key, path, hrp, password, kdf)
    }

    /// Decrypts key `name`.
    pub(crate) fn load(&self, name: &str, password: &str) -> Result<Keypair> {
        load_keypair(&self.file_of(name)?, password)
    }

    /// The public part of key `name`.
    pub(crate) fn info(&self, name: &str) -> Result<KeyInfo> {
        read_info(&self.file_of(name)?)
    }

    /// Every `<name>.json` in the folder, sorted by name, each read or with why it could not be.
    pub(crate) fn list(&self) -> Result<Vec<(String, Result<KeyInfo>)>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(KeystoreError::Io { path: self.dir.clone(), source }),
        };
        let mut out = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            let Some(name) = file_name.strip_suffix(".json") else { continue };
            if check_name(name).is_err() {
                continue;
            }
            out.push((name.to_owned(), read_info(&entry.path())));
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    fn ensure_dir(&self) -> Result<()> {
        let io = |source| KeystoreError::Io { path: self.dir.clone(), source };
        if self.dir.is_dir() {
            return Ok(());
        }
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(&self.dir).map_err(io)
    }

    /// Whether others than the owner may read the folder (unix only; `false` elsewhere).
    pub(crate) fn is_group_or_world_accessible(&self) -> bool {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            fs::metadata(&self.dir).is_ok_and(|m| m.permissions().mode() & 0o077 != 0)
        }
        #[cfg(not(unix))]
        {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters so tests run in milliseconds; real files use [`KdfParams::RFC9106`].
    const FAST: KdfParams = KdfParams { m_kib: 64, t: 1, p: 1 };

    fn store() -> (tempfile::TempDir, Keystore) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let ks = Keystore::new(tmp.path().join("keystore"));
        (tmp, ks)
    }

    fn rewrite(file: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
        let mut v: serde_json::Value = serde_json::from_str(&fs::read_to_string(file).expect("read")).expect("json");
        edit(&mut v);
        fs::write(file, serde_json::to_string(&v).expect("json")).expect("write");
    }

    #[test]
    fn saved_key_loads_back_with_the_right_password() {
        let (_tmp, ks) = store();
        let key = Keypair::from_seed(&[7; 32]);
        let info = ks.create("alice", &key, Some("m/44'/7331'/0'/0'"), "tdev", "correct horse", FAST).expect("save");
        assert!(info.address.starts_with("tdev1"));
        assert_eq!(info.public_key, key.public());
        let loaded = ks.load("alice", "correct horse").expect("load");
        assert_eq!(loaded.seed(), key.seed());
        assert_eq!(ks.info("alice").expect("info"), info);
        let text = fs::read_to_string(&info.file).expect("read");
        assert!(!text.contains(&hex::encode([7u8; 32])), "the secret must not be stored in clear");
    }

    #[cfg(unix)]
    #[test]
    fn key_files_are_private_to_the_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let (_tmp, ks) = store();
        let info = ks.create("bob", &Keypair::from_seed(&[1; 32]), None, "tdev", "pw", FAST).expect("save");
        assert_eq!(fs::metadata(&info.file).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(ks.dir()).expect("meta").permissions().mode() & 0o777, 0o700);
        assert!(!ks.is_group_or_world_accessible());
    }

    #[test]
    fn wrong_password_is_refused_with_a_clear_error() {
        let (_tmp, ks) = store();
        ks.create("alice", &Keypair::from_seed(&[7; 32]), None, "tdev", "right", FAST).expect("save");
        let err = ks.load("alice", "wrong").expect_err("must fail");
        assert!(matches!(err, KeystoreError::WrongPassword(_)));
        assert!(err.to_string().starts_with("wrong password or corrupted keystore file "), "{err}");
        assert!(err.to_string().ends_with("alice.json"), "{err}");
    }

    #[test]
    fn tampered_kdf_params_version_or_address_fail_decryption() {
        let (_tmp, ks) = store();
        let key = Keypair::from_seed(&[7; 32]);
        let other = Address::from_public_key(Keypair::from_seed(&[8; 32]).public());
        type Edit = Box<dyn Fn(&mut serde_json::Value)>;
        let edits: Vec<(&str, Edit)> = vec![
            ("t", Box::new(|v| v["kdf"]["t"] = 2.into())),
            ("mKiB", Box::new(|v| v["kdf"]["mKiB"] = 128.into())),
            (
                "hrp of the address",
                Box::new(|v| {
                    v["address"] =
                        Address::from_public_key(Keypair::from_seed(&[7; 32]).public()).to_bech32("tks").into()
                }),
            ),
            (
                "ciphertext",
                Box::new(|v| {
                    let mut c = hex::decode(v["ciphertext"].as_str().expect("str")).expect("hex");
                    c[0] ^= 1;
                    v["ciphertext"] = hex::encode(c).into();
                }),
            ),
        ];
        for (i, (what, edit)) in edits.into_iter().enumerate() {
            let name = format!("k{i}");
            let info = ks.create(&name, &key, None, "tdev", "pw", FAST).expect("save");
            rewrite(&info.file, edit);
            let err = ks.load(&name, "pw").expect_err(what);
            assert!(matches!(err, KeystoreError::WrongPassword(_)), "{what}: {err}");
        }
        // Pointing the file at another key is caught before decryption.
        let info = ks.create("swap", &key, None, "tdev", "pw", FAST).expect("save");
        rewrite(&info.file, |v| v["address"] = other.to_bech32("tdev").into());
        assert!(matches!(ks.load("swap", "pw"), Err(KeystoreError::Format { .. })));
        // A file of another version is refused outright.
        let info = ks.create("v2", &key, None, "tdev", "pw", FAST).expect("save");
        rewrite(&info.file, |v| v["version"] = 2.into());
        assert!(matches!(ks.load("v2", "pw"), Err(KeystoreError::Format { .. })));
    }

    #[test]
    fn existing_names_are_never_overwritten() {
        let (_tmp, ks) = store();
        ks.create("alice", &Keypair::from_seed(&[1; 32]), None, "tdev", "pw", FAST).expect("save");
        let err = ks.create("alice", &Keypair::from_seed(&[2; 32]), None, "tdev", "pw", FAST).expect_err("exists");
        assert!(matches!(err, KeystoreError::Exists(_)));
        let file = ks.file_of("alice").expect("name");
        let err = save(&file, "alice", &Keypair::from_seed(&[2; 32]), None, "tdev", "pw", FAST).expect_err("exists");
        assert!(matches!(err, KeystoreError::Exists(_)));
        assert_eq!(ks.load("alice", "pw").expect("load").seed(), [1; 32]);
    }

    #[test]
    fn names_are_restricted_to_safe_characters() {
        for ok in ["a", "alice_2", "Validator-0", &"x".repeat(64)] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../etc", "a b", "a.json", "ä", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_shows_names_and_addresses_sorted_without_a_password() {
        let (_tmp, ks) = store();
        assert!(ks.list().expect("empty").is_empty());
        ks.create("zed", &Keypair::from_seed(&[1; 32]), None, "tdev", "pw", FAST).expect("save");
        ks.create("amy", &Keypair::from_seed(&[2; 32]), None, "tdev", "pw", FAST).expect("save");
        fs::write(ks.dir().join("broken.json"), "{}").expect("write");
        let listed = ks.list().expect("list");
        let names: Vec<&str> = listed.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["amy", "broken", "zed"]);
        assert!(listed[1].1.is_err());
        assert!(listed[0].1.as_ref().expect("ok").address.starts_with("tdev1"));
    }

    #[test]
    fn hostile_kdf_parameters_are_refused_before_allocating() {
        let (_tmp, ks) = store();
        let info = ks.create("big", &Keypair::from_seed(&[1; 32]), None, "tdev", "pw", FAST).expect("save");
        rewrite(&info.file, |v| v["kdf"]["mKiB"] = u32::MAX.into());
        assert!(matches!(ks.load("big", "pw"), Err(KeystoreError::KdfParams { .. })));
    }

    #[test]
    fn rfc9106_parameters_are_accepted_by_argon2() {
        assert!(KdfParams::RFC9106.argon2().is_ok());
        assert_eq!(KdfParams::RFC9106, KdfParams { m_kib: 65536, t: 3, p: 1 });
    }
}
