//! Blob storage for the large HA state, like Flink's `high-availability.storageDir`: job graphs
//! and checkpoint metadata live here, and ConfigMaps hold only small pointers to them.
//!
//! [`BlobStore`] is the interface. [`FsBlobStore`] keeps every blob as a file under a root
//! directory (a local disk or a shared mount), replacing it atomically; [`MemoryBlobStore`] keeps
//! blobs in memory and injects seeded, switchable faults for the deterministic simulator.
//!
//! Paths are relative, slash-separated keys such as `ha/job-1/checkpoint-0000000000000000007`;
//! every operation checks its path first (see [`validate_path`]). A path names either a blob or
//! a prefix of other blobs, never both: `ha/job-1` cannot be a blob while `ha/job-1/job-graph`
//! is one, because the file store maps prefixes to directories.
//!
//! # What an error says about a write
//!
//! | Result | Did the write take effect? |
//! |---|---|
//! | `Ok` | yes |
//! | [`BlobError::InvalidPath`] | no: nothing was attempted |
//! | [`BlobError::Unavailable`] | no |
//! | [`BlobError::Ambiguous`] | unknown: it may have |
//! | [`BlobError::Io`] | unknown in general; [`FsBlobStore`] says when it can know |
//!
//! A blob write that fails is harmless as long as no pointer names the blob yet. The dangerous
//! case is an ambiguous *pointer* write, described at [`BlobError::Ambiguous`].
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use khaos_elector::blob::{BlobFaults, BlobStore, MemoryBlobStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryBlobStore::new(7);
//! let path = "ha/job-1/checkpoint-0000000000000000007";
//! store.put(path, Bytes::from_static(b"metadata")).await?;
//! assert_eq!(store.get(path).await?, Bytes::from_static(b"metadata"));
//! assert_eq!(store.list("ha/job-1/").await?, vec![path.to_owned()]);
//!
//! // From now on every write loses its acknowledgement: it happens, but the caller cannot know.
//! store.set_faults(BlobFaults { ambiguous_probability: 1.0, ..BlobFaults::default() })?;
//! let error = store.delete(path).await.unwrap_err();
//! assert!(error.is_ambiguous());
//! assert!(!store.exists(path).await?);
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::{self, Write as _};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The longest valid path, in bytes.
pub const PATH_BYTES_MAX: usize = 1024;

/// The longest valid path component, in bytes (`NAME_MAX` on Linux file systems).
pub const COMPONENT_BYTES_MAX: usize = 255;

/// The most components a valid path may have; it is also how deep [`FsBlobStore`] walks in
/// `list`, so every blob a `put` accepts is reachable by `list`.
pub const PATH_COMPONENTS_MAX: usize = 64;

/// The most entries one `list` may handle: [`FsBlobStore`] counts every directory entry it
/// visits, [`MemoryBlobStore`] every key it returns. Past it `list` fails with
/// [`BlobError::Io`] rather than return a partial answer.
pub const LIST_ENTRIES_MAX: usize = 1 << 20;

/// The prefix of [`FsBlobStore`]'s temporary files. No component of a valid path may start with
/// it, so `list` can skip temporary files without ever hiding a blob.
pub const TEMP_FILE_PREFIX: &str = ".khaos-blob-tmp-";

/// How many temporary file names `put` tries before giving up. Names repeat across processes
/// (two containers are both pid 1) and across restarts, so a name may be taken; each attempt
/// takes the next counter value.
const TEMP_FILE_ATTEMPTS_MAX: u32 = 64;

/// Makes temporary file names unique within this process; the pid separates processes on one
/// host, and `create_new` catches the rest.
static TEMP_FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// An error from a [`BlobStore`] operation.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    /// The path is not a valid blob path (see [`validate_path`]); nothing was attempted.
    #[error("invalid blob path {path:?}: {reason}")]
    InvalidPath {
        /// The rejected path (for `list`, the prefix).
        path: String,
        /// Which rule the path breaks.
        reason: &'static str,
    },
    /// No blob exists at the path.
    #[error("blob {path:?} not found")]
    NotFound {
        /// The path that holds no blob.
        path: String,
    },
    /// The storage failed. For a read nothing changed; for a write the outcome is unknown in
    /// general (see [`FsBlobStore`] for when it is known).
    #[error("i/o error on blob {path:?}")]
    Io {
        /// The path of the operation (for `list`, the prefix; for [`FsBlobStore::new`], the root).
        path: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The store could not be reached (an injected fault or a transport failure). The operation
    /// did *not* happen, so it is safe to retry or to give up.
    #[error("blob store unavailable for {path:?}; the operation did not happen")]
    Unavailable {
        /// The path of the operation.
        path: String,
    },
    /// The operation may or may not have happened: for example a timeout after the write was
    /// sent, or an acknowledgement that was lost.
    ///
    /// The blob store only reports this; what to do is the caller's decision, and one decision
    /// is always wrong. After an ambiguous write of a *pointer* to a blob (the ConfigMap entry
    /// that names a checkpoint), the caller must never discard the blob: the pointer may have
    /// been written, and a later leader would follow it to a blob that is gone. That is Flink
    /// bug FLINK-28265, where the state handle was discarded after a ConfigMap update of unknown
    /// outcome and recovery then failed on a broken state handle. Keep the blob, and let the
    /// next successful pointer update (or a cleanup that reads the pointers first) decide.
    #[error("outcome of the operation on blob {path:?} is unknown")]
    Ambiguous {
        /// The path of the operation.
        path: String,
    },
}

impl BlobError {
    /// Whether the error says no blob exists at the path.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether the operation may or may not have happened (see [`BlobError::Ambiguous`]).
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, Self::Ambiguous { .. })
    }

    /// Whether the store was unreachable and the operation did not happen.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    /// Whether the path was rejected before anything was attempted.
    pub fn is_invalid_path(&self) -> bool {
        matches!(self, Self::InvalidPath { .. })
    }

    /// The path (or, for `list`, the prefix) of the failed operation.
    pub fn path(&self) -> &str {
        match self {
            Self::InvalidPath { path, .. }
            | Self::NotFound { path }
            | Self::Io { path, .. }
            | Self::Unavailable { path }
            | Self::Ambiguous { path } => path,
        }
    }
}

/// A blob store: keys are relative slash-separated paths like
/// `ha/job-1/checkpoint-0000000000000000007`.
///
/// Every method validates its path first and fails with [`BlobError::InvalidPath`] without
/// touching the store.
pub trait BlobStore: Send + Sync + 'static {
    /// Stores `bytes` at `path`, replacing any blob there. Atomic: a reader sees the old blob or
    /// the new one, never a mix or a prefix.
    fn put<'a>(&'a self, path: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BlobError>>;

    /// Reads the blob at `path`; [`BlobError::NotFound`] if there is none.
    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, BlobError>>;

    /// Removes the blob at `path`. Idempotent: `Ok` if there is none.
    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), BlobError>>;

    /// Whether a blob exists at `path`. A prefix of other blobs is not a blob.
    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, BlobError>>;

    /// The paths of all blobs that start with `prefix` (a plain string prefix, so
    /// `"ha/job-1/checkpoint-"` works as well as `"ha/job-1/"`; `""` lists everything), sorted
    /// by their bytes.
    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>>;
}

impl<T: BlobStore + ?Sized> BlobStore for Arc<T> {
    fn put<'a>(&'a self, path: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BlobError>> {
        (**self).put(path, bytes)
    }

    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, BlobError>> {
        (**self).get(path)
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        (**self).delete(path)
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, BlobError>> {
        (**self).exists(path)
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        (**self).list(prefix)
    }
}

/// Checks that `path` is a valid blob path.
///
/// A valid path is non-empty, at most [`PATH_BYTES_MAX`] bytes and [`PATH_COMPONENTS_MAX`]
/// components, relative, free of backslashes and NUL bytes, and made of non-empty components
/// of at most [`COMPONENT_BYTES_MAX`] bytes that are neither `.` nor `..` and do not start with
/// [`TEMP_FILE_PREFIX`]. These rules keep a path from escaping the store's root, make it mean
/// the same on every platform, and let it be a file name on every common file system.
pub fn validate_path(path: &str) -> Result<(), BlobError> {
    check_path(path).map_err(|reason| BlobError::InvalidPath {
        path: path.to_owned(),
        reason,
    })
}

fn check_path(path: &str) -> Result<(), &'static str> {
    if path.is_empty() {
        return Err("path is empty");
    }
    check_characters(path)?;
    if path.split('/').count() > PATH_COMPONENTS_MAX {
        return Err("path has more than 64 components");
    }
    path.split('/').try_for_each(check_component)
}

/// Checks a `list` prefix: like a path, except that it may be empty and its last component may
/// be partial (empty, `.`, or the start of a longer name), because it is matched as a string.
fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    let check = || -> Result<(), &'static str> {
        check_characters(prefix)?;
        let components = prefix.split('/').count();
        if components > PATH_COMPONENTS_MAX {
            return Err("prefix has more than 64 components");
        }
        let mut complete = prefix.split('/').take(components - 1);
        complete.try_for_each(check_component)?;
        let partial = prefix.rsplit('/').next().unwrap_or_default();
        if partial.len() > COMPONENT_BYTES_MAX {
            return Err("path has a component longer than 255 bytes");
        }
        Ok(())
    };
    check().map_err(|reason| BlobError::InvalidPath {
        path: prefix.to_owned(),
        reason,
    })
}

fn check_characters(path: &str) -> Result<(), &'static str> {
    if path.len() > PATH_BYTES_MAX {
        return Err("path is longer than 1024 bytes");
    }
    if path.starts_with('/') {
        return Err("path is absolute");
    }
    if path.contains('\\') {
        return Err("path contains a backslash");
    }
    if path.contains('\0') {
        return Err("path contains a NUL byte");
    }
    Ok(())
}

fn check_component(component: &str) -> Result<(), &'static str> {
    match component {
        // An empty component ("a//b", "a/") would name the same file as a different key.
        "" => Err("path has an empty component"),
        "." => Err("path has a `.` component"),
        ".." => Err("path has a `..` component"),
        _ if component.len() > COMPONENT_BYTES_MAX => {
            Err("path has a component longer than 255 bytes")
        }
        _ if component.starts_with(TEMP_FILE_PREFIX) => {
            Err("path has a component with the reserved temporary-file prefix")
        }
        _ => Ok(()),
    }
}

/// A [`BlobStore`] that keeps every blob as a file under a root directory.
///
/// `put` writes a temporary file in the target's directory, fsyncs it, renames it over the
/// target and fsyncs the directory, so a crash leaves the old blob or the new one, never a torn
/// one. Directories for the path's prefixes are created (and made durable) as needed; `delete`
/// leaves them in place, because removing a directory would race with a concurrent `put` into
/// it. The blocking file system calls run on Tokio's blocking pool, so every method must be
/// called within a Tokio runtime.
///
/// What a [`BlobError::Io`] from a write means here: `put` leaves the old blob in place, unless
/// only the final directory fsync failed, in which case the new blob is visible but may not
/// survive a crash. `delete` likewise fails either before removing the file or, at the
/// directory fsync, after it.
///
/// A crash during `put` can leave a temporary file behind; `list` skips it and nothing reads
/// it. They are not swept automatically, because a file that looks abandoned may belong to
/// another process writing to the same shared directory right now.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use khaos_elector::blob::{BlobStore, FsBlobStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), khaos_elector::blob::BlobError> {
/// let dir = tempfile::tempdir().expect("a temporary directory");
/// let store = FsBlobStore::new(dir.path().join("ha-storage"))?;
/// store.put("ha/job-1/job-graph", Bytes::from_static(b"graph")).await?;
/// assert!(store.exists("ha/job-1/job-graph").await?);
/// assert_eq!(store.list("").await?, vec!["ha/job-1/job-graph".to_owned()]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Opens a store rooted at `root`, creating the directory (and its parents) if needed.
    ///
    /// This blocks on the file system, once; call it before serving.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|source| BlobError::Io {
            path: root.display().to_string(),
            source,
        })?;
        Ok(Self { root })
    }

    /// The directory that holds the blobs.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl BlobStore for FsBlobStore {
    fn put<'a>(&'a self, path: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            let root = self.root.clone();
            let key = path.to_owned();
            run_blocking(path, move || put_file(&root, &key, &bytes)).await
        })
    }

    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            let file = join(&self.root, path);
            let read = run_blocking(path, move || match fs::read(&file) {
                Ok(contents) => Ok(Some(contents)),
                Err(error) if is_absent(&error) => Ok(None),
                Err(error) => Err(error),
            });
            match read.await? {
                Some(contents) => Ok(Bytes::from(contents)),
                None => Err(BlobError::NotFound {
                    path: path.to_owned(),
                }),
            }
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            let file = join(&self.root, path);
            run_blocking(path, move || match fs::remove_file(&file) {
                // The removal is durable only once the directory is synced.
                Ok(()) => sync_dir(file.parent().unwrap_or(&file)),
                Err(error) if is_absent(&error) => Ok(()),
                Err(error) => Err(error),
            })
            .await
        })
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            let file = join(&self.root, path);
            run_blocking(path, move || match fs::metadata(&file) {
                // A directory is a prefix of other blobs, not a blob.
                Ok(metadata) => Ok(metadata.is_file()),
                Err(error) if is_absent(&error) => Ok(false),
                Err(error) => Err(error),
            })
            .await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        Box::pin(async move {
            validate_prefix(prefix)?;
            let root = self.root.clone();
            let owned_prefix = prefix.to_owned();
            run_blocking(prefix, move || list_files(&root, &owned_prefix)).await
        })
    }
}

/// Runs blocking file system work on Tokio's blocking pool.
async fn run_blocking<T: Send + 'static>(
    path: &str,
    work: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, BlobError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result.map_err(|source| BlobError::Io {
            path: path.to_owned(),
            source,
        }),
        // A panic in the work is a bug in this module, not an operating error.
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // A blocking task is cancelled only if the runtime shuts down before it starts (once
        // started it runs to the end), so the operation did not happen.
        Err(_) => Err(BlobError::Unavailable {
            path: path.to_owned(),
        }),
    }
}

/// The file for a valid key (or the directory for a key prefix without its trailing slash).
fn join(root: &Path, key: &str) -> PathBuf {
    let mut file = root.to_path_buf();
    // Pushing component by component lets the platform choose the separator.
    for component in key.split('/').filter(|component| !component.is_empty()) {
        file.push(component);
    }
    file
}

/// Whether a file system error means "no blob there": nothing at the path, an ancestor that is
/// a file, or a directory where the blob would be.
fn is_absent(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn put_file(root: &Path, key: &str, bytes: &[u8]) -> io::Result<()> {
    let (dir, name) = match key.rsplit_once('/') {
        Some((dir_key, name)) => (create_dirs(root, dir_key)?, name),
        None => (root.to_path_buf(), key),
    };
    let target = dir.join(name);
    let (temp, file) = create_temp_file(&dir)?;
    let placed = write_synced(file, bytes).and_then(|()| rename_into_place(&temp, &target));
    if let Err(error) = placed {
        // The temporary file's name was unique to this call, so removing it cannot hurt another
        // writer; if removing fails, `list` skips the leftover anyway.
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    // Until the directory is synced, a crash may undo the rename that readers already saw.
    sync_dir(&dir)
}

/// Creates the directories of `dir_key` under `root` and returns the innermost one.
fn create_dirs(root: &Path, dir_key: &str) -> io::Result<PathBuf> {
    let dir = join(root, dir_key);
    // Most puts go to a directory that exists already (one per job), so skip the walk. A
    // concurrent creator may not have synced it yet; that window is its mkdir-to-fsync time.
    if fs::metadata(&dir).is_ok_and(|metadata| metadata.is_dir()) {
        return Ok(dir);
    }
    let mut current = root.to_path_buf();
    // Bounded: a valid key has at most PATH_COMPONENTS_MAX components.
    for component in dir_key.split('/') {
        let parent = current.clone();
        current.push(component);
        match fs::create_dir(&current) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                if !fs::metadata(&current)?.is_dir() {
                    return Err(io::Error::new(
                        io::ErrorKind::NotADirectory,
                        "an ancestor of the path is a blob",
                    ));
                }
            }
            Err(error) => return Err(error),
        }
        // Sync even when the directory already existed: a concurrent put may have created it
        // and not synced its parent yet, and our blob must not outlive its directory entry.
        sync_dir(&parent)?;
    }
    Ok(current)
}

fn create_temp_file(dir: &Path) -> io::Result<(PathBuf, fs::File)> {
    let pid = std::process::id();
    for _ in 0..TEMP_FILE_ATTEMPTS_MAX {
        let number = TEMP_FILE_COUNTER.fetch_add(1, Ordering::Relaxed);
        let temp = dir.join(format!("{TEMP_FILE_PREFIX}{pid}-{number}"));
        // `create_new` makes a name collision (another process, another incarnation) an error
        // instead of two writers sharing one file.
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(error) => return Err(error),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temporary file name after 64 attempts",
    ))
}

fn write_synced(mut file: fs::File, bytes: &[u8]) -> io::Result<()> {
    file.write_all(bytes)?;
    // The data must be on disk before the rename publishes it, or a crash could leave the new
    // name pointing at an empty or partial file.
    file.sync_all()
}

fn rename_into_place(temp: &Path, target: &Path) -> io::Result<()> {
    match fs::rename(temp, target) {
        Err(error) if error.kind() == io::ErrorKind::IsADirectory => {
            // The target is a directory. If it is empty it is only left over from deleted blobs
            // (delete keeps directories) and may go; if not, it holds blobs and the put must
            // fail, as it does in MemoryBlobStore.
            if fs::remove_dir(target).is_err() {
                return Err(error);
            }
            fs::rename(temp, target)
        }
        other => other,
    }
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    // On Unix a new, renamed or removed entry is durable only once its directory is synced.
    #[cfg(unix)]
    {
        fs::File::open(dir)?.sync_all()
    }
    // Elsewhere a directory cannot be opened for syncing; the rename is the best there is.
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

fn list_files(root: &Path, prefix: &str) -> io::Result<Vec<String>> {
    // Start at the directory named by the prefix's complete components; the partial last
    // component is matched as a string.
    let dir_key = prefix.rsplit_once('/').map_or("", |(dir_key, _)| dir_key);
    let (start_key, start_depth) = if dir_key.is_empty() {
        (String::new(), 0)
    } else {
        (format!("{dir_key}/"), dir_key.split('/').count())
    };
    let mut pending = vec![(join(root, dir_key), start_key, start_depth)];
    let mut keys = Vec::new();
    let mut visited: usize = 0;
    // Bounded: every directory entry counts against LIST_ENTRIES_MAX, and directories deeper
    // than PATH_COMPONENTS_MAX are not entered.
    while let Some((dir, dir_prefix, depth)) = pending.pop() {
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            // No such directory (or it vanished under a concurrent delete): nothing listed there.
            Err(error) if is_absent(&error) => continue,
            Err(error) => return Err(error),
        };
        for entry in entries {
            let entry = entry?;
            visited += 1;
            if visited > LIST_ENTRIES_MAX {
                return Err(io::Error::other(format!(
                    "more than {LIST_ENTRIES_MAX} directory entries to list"
                )));
            }
            // Names that no valid key could have (not UTF-8, temporary files) are not blobs.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if check_component(&name).is_err() {
                continue;
            }
            let key = format!("{dir_prefix}{name}");
            // `file_type` does not follow symlinks; the store never creates any, and not
            // following them keeps a link cycle from being walked.
            let file_type = entry.file_type()?;
            if file_type.is_file() {
                if key.starts_with(prefix) && check_path(&key).is_ok() {
                    keys.push(key);
                }
            } else if file_type.is_dir() && depth + 1 < PATH_COMPONENTS_MAX {
                let sub_prefix = format!("{key}/");
                if sub_prefix.starts_with(prefix) {
                    pending.push((entry.path(), sub_prefix, depth + 1));
                }
            }
        }
    }
    keys.sort_unstable();
    Ok(keys)
}

/// Faults a [`MemoryBlobStore`] injects; the default injects none.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BlobFaults {
    /// The shortest latency of an operation, in milliseconds.
    pub latency_ms_min: u64,
    /// The longest latency of an operation, in milliseconds (at most
    /// [`BlobFaults::LATENCY_LIMIT_MS`]).
    pub latency_ms_max: u64,
    /// The probability, in `[0, 1]`, that an operation fails with [`BlobError::Unavailable`]
    /// without happening.
    pub fail_probability: f64,
    /// The probability, in `[0, 1]`, that a write which did not fail happens and then reports
    /// [`BlobError::Ambiguous`] (a lost acknowledgement). Reads are never ambiguous.
    pub ambiguous_probability: f64,
}

impl BlobFaults {
    /// The longest latency a fault may inject, in milliseconds (ten minutes): longer than any
    /// lease or timeout worth simulating, short enough that a run always ends.
    pub const LATENCY_LIMIT_MS: u64 = 600_000;

    /// Checks the settings; the error names the bad field.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms_max > Self::LATENCY_LIMIT_MS {
            return Err(format!(
                "latency_ms_max must be at most {} ms, got {}",
                Self::LATENCY_LIMIT_MS,
                self.latency_ms_max
            ));
        }
        if self.latency_ms_min > self.latency_ms_max {
            return Err(format!(
                "latency_ms_min ({}) must not exceed latency_ms_max ({})",
                self.latency_ms_min, self.latency_ms_max
            ));
        }
        let probabilities = [
            ("fail_probability", self.fail_probability),
            ("ambiguous_probability", self.ambiguous_probability),
        ];
        for (name, value) in probabilities {
            // `contains` is false for NaN, which is what we want.
            if !(0.0..=1.0).contains(&value) {
                return Err(format!("{name} must be within [0, 1], got {value}"));
            }
        }
        Ok(())
    }
}

/// An in-memory [`BlobStore`] with seeded, switchable faults, for the deterministic simulator.
///
/// Cloning it shares the same store. It reads no clock and no ambient randomness: latency is a
/// `tokio::time::sleep` (which the simulator controls) and every fault is drawn from a
/// `ChaCha8Rng` seeded with the caller's seed, so the same seed, faults and sequence of calls
/// give the same outcomes.
///
/// Each operation that passes path validation (and only those; see
/// [`MemoryBlobStore::operations`]) runs these steps:
///
/// 1. Draw three 64-bit numbers, always all three and in this order, whatever the operation
///    and the faults: the latency, the failure draw, the ambiguity draw. A fixed count per
///    operation means changing one fault setting or one call's kind does not shift the draws
///    of every later call.
/// 2. Sleep the latency, `latency_ms_min + draw % (latency_ms_max - latency_ms_min + 1)` ms
///    (uniform up to a bias below 2^-40); no sleep at all when it is zero.
/// 3. If the failure draw, as a fraction in `[0, 1)`, is below `fail_probability`, return
///    [`BlobError::Unavailable`] without touching the store.
/// 4. Do the operation. If it is a write (`put` or `delete`), it succeeded, and the ambiguity
///    draw is below `ambiguous_probability`, return [`BlobError::Ambiguous`] although the write
///    happened.
///
/// Dropping the future before its latency has passed leaves the store untouched, like a
/// request that never left the client. The lock is never held across an await.
///
/// Like [`FsBlobStore`], it refuses to make a path both a blob and a prefix of other blobs,
/// with [`BlobError::Io`] of kind `NotADirectory` (an ancestor is a blob) or `IsADirectory`
/// (blobs exist under the path), so the simulator catches what the file store would reject.
///
/// # Example
///
/// ```
/// use bytes::Bytes;
/// use khaos_elector::blob::{BlobFaults, BlobStore, MemoryBlobStore};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryBlobStore::new(42);
/// store.set_faults(BlobFaults { fail_probability: 1.0, ..BlobFaults::default() })?;
/// assert!(store.put("ha/job-1/job-graph", Bytes::new()).await.unwrap_err().is_unavailable());
/// assert!(store.snapshot().is_empty());
/// assert_eq!(store.operations(), 1);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct MemoryBlobStore {
    state: Arc<Mutex<MemoryState>>,
}

struct MemoryState {
    blobs: BTreeMap<String, Bytes>,
    rng: ChaCha8Rng,
    faults: BlobFaults,
    operations: u64,
}

/// What the generator decided for one operation.
#[derive(Debug, Clone, Copy)]
struct Draw {
    latency: Duration,
    fail: bool,
    ambiguous: bool,
}

/// Whether an operation changes the store; only changes can be ambiguous.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    Read,
    Write,
}

impl MemoryBlobStore {
    /// An empty store with no faults whose fault draws come from `seed`.
    pub fn new(seed: u64) -> Self {
        Self {
            state: Arc::new(Mutex::new(MemoryState {
                blobs: BTreeMap::new(),
                rng: ChaCha8Rng::seed_from_u64(seed),
                faults: BlobFaults::default(),
                operations: 0,
            })),
        }
    }

    /// Replaces the faults for every later operation (operations already sleeping keep what they
    /// drew). Rejects invalid settings, naming the bad field, and then changes nothing.
    pub fn set_faults(&self, faults: BlobFaults) -> Result<(), String> {
        faults.validate()?;
        self.lock().faults = faults;
        Ok(())
    }

    /// The faults now in force.
    pub fn faults(&self) -> BlobFaults {
        self.lock().faults
    }

    /// A copy of every blob, by path: what a checker inspects. Cheap: [`Bytes`] clones share
    /// their buffers.
    pub fn snapshot(&self) -> BTreeMap<String, Bytes> {
        self.lock().blobs.clone()
    }

    /// How many operations have drawn from the generator: every call whose path was valid,
    /// including those that then failed by injection. Calls with an invalid path draw nothing
    /// and are not counted.
    pub fn operations(&self) -> u64 {
        self.lock().operations
    }

    fn lock(&self) -> MutexGuard<'_, MemoryState> {
        // Every critical section is a single map or field update that leaves the state whole,
        // so a panic elsewhere while the lock was held cannot have torn it.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn draw(&self) -> Draw {
        let mut state = self.lock();
        state.operations += 1;
        let faults = state.faults;
        // The order is part of the replay contract: see the type's documentation.
        let latency_draw = state.rng.next_u64();
        let fail_draw = unit_fraction(state.rng.next_u64());
        let ambiguous_draw = unit_fraction(state.rng.next_u64());
        // `validate` guarantees min <= max <= LATENCY_LIMIT_MS, so neither step overflows.
        let span_ms = faults.latency_ms_max - faults.latency_ms_min + 1;
        Draw {
            latency: Duration::from_millis(faults.latency_ms_min + latency_draw % span_ms),
            fail: fail_draw < faults.fail_probability,
            ambiguous: ambiguous_draw < faults.ambiguous_probability,
        }
    }

    async fn perform<T>(
        &self,
        path: &str,
        access: Access,
        apply: impl FnOnce(&mut BTreeMap<String, Bytes>) -> Result<T, BlobError>,
    ) -> Result<T, BlobError> {
        let draw = self.draw();
        // A zero sleep would still register a timer and yield; skipping it keeps a fault-free
        // store usable without a Tokio time driver.
        if !draw.latency.is_zero() {
            tokio::time::sleep(draw.latency).await;
        }
        if draw.fail {
            return Err(BlobError::Unavailable {
                path: path.to_owned(),
            });
        }
        let result = apply(&mut self.lock().blobs);
        match result {
            Ok(_) if access == Access::Write && draw.ambiguous => Err(BlobError::Ambiguous {
                path: path.to_owned(),
            }),
            other => other,
        }
    }
}

/// Maps a 64-bit draw to a fraction in `[0, 1)` using its top 53 bits, the precision of an f64.
fn unit_fraction(draw: u64) -> f64 {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    (draw >> 11) as f64 * SCALE
}

/// Refuses to make `path` both a blob and a prefix of other blobs, as a file system would.
fn check_nesting(blobs: &BTreeMap<String, Bytes>, path: &str) -> Result<(), BlobError> {
    let conflict = |kind, message| BlobError::Io {
        path: path.to_owned(),
        source: io::Error::new(kind, message),
    };
    // Bounded: a valid path has fewer than PATH_COMPONENTS_MAX slashes.
    for (index, _) in path.match_indices('/') {
        if blobs.contains_key(&path[..index]) {
            return Err(conflict(
                io::ErrorKind::NotADirectory,
                "an ancestor of the path is a blob",
            ));
        }
    }
    let below = format!("{path}/");
    let mut later = blobs.range::<str, _>((Bound::Included(below.as_str()), Bound::Unbounded));
    if later.next().is_some_and(|(key, _)| key.starts_with(&below)) {
        return Err(conflict(
            io::ErrorKind::IsADirectory,
            "blobs exist under the path",
        ));
    }
    Ok(())
}

impl fmt::Debug for MemoryBlobStore {
    // The blobs themselves could be megabytes; their count says enough.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        formatter
            .debug_struct("MemoryBlobStore")
            .field("blobs", &state.blobs.len())
            .field("faults", &state.faults)
            .field("operations", &state.operations)
            .finish_non_exhaustive()
    }
}

impl BlobStore for MemoryBlobStore {
    fn put<'a>(&'a self, path: &'a str, bytes: Bytes) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            self.perform(path, Access::Write, |blobs| {
                check_nesting(blobs, path)?;
                blobs.insert(path.to_owned(), bytes);
                Ok(())
            })
            .await
        })
    }

    fn get<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<Bytes, BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            self.perform(path, Access::Read, |blobs| {
                blobs.get(path).cloned().ok_or_else(|| BlobError::NotFound {
                    path: path.to_owned(),
                })
            })
            .await
        })
    }

    fn delete<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<(), BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            self.perform(path, Access::Write, |blobs| {
                blobs.remove(path);
                Ok(())
            })
            .await
        })
    }

    fn exists<'a>(&'a self, path: &'a str) -> BoxFuture<'a, Result<bool, BlobError>> {
        Box::pin(async move {
            validate_path(path)?;
            self.perform(path, Access::Read, |blobs| Ok(blobs.contains_key(path)))
                .await
        })
    }

    fn list<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<Vec<String>, BlobError>> {
        Box::pin(async move {
            validate_prefix(prefix)?;
            self.perform(prefix, Access::Read, |blobs| {
                let keys: Vec<String> = blobs
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|(key, _)| key.starts_with(prefix))
                    .take(LIST_ENTRIES_MAX + 1)
                    .map(|(key, _)| key.clone())
                    .collect();
                if keys.len() > LIST_ENTRIES_MAX {
                    return Err(BlobError::Io {
                        path: prefix.to_owned(),
                        source: io::Error::other(format!(
                            "more than {LIST_ENTRIES_MAX} blobs to list"
                        )),
                    });
                }
                Ok(keys)
            })
            .await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use tokio::time::Instant;

    /// An operation's outcome as one comparable line.
    fn outcome<T: fmt::Debug>(result: &Result<T, BlobError>) -> String {
        match result {
            Ok(value) => format!("ok {value:?}"),
            Err(error) => format!("error {error}"),
        }
    }

    fn io_kind(error: &BlobError) -> Option<io::ErrorKind> {
        match error {
            BlobError::Io { source, .. } => Some(source.kind()),
            _ => None,
        }
    }

    #[test]
    fn path_validation_table() {
        let component_max = "c".repeat(COMPONENT_BYTES_MAX);
        let component_too_long = "c".repeat(COMPONENT_BYTES_MAX + 1);
        // Five components of 204 bytes and four slashes: exactly 1024 bytes.
        let path_max = vec!["p".repeat(204); 5].join("/");
        let path_too_long = vec!["p".repeat(205); 5].join("/");
        let components_max = vec!["a"; PATH_COMPONENTS_MAX].join("/");
        let components_too_many = vec!["a"; PATH_COMPONENTS_MAX + 1].join("/");
        let reserved = format!("ha/{TEMP_FILE_PREFIX}1-2");
        assert_eq!(path_max.len(), PATH_BYTES_MAX);

        let table: Vec<(&str, Option<&str>)> = vec![
            ("a", None),
            ("ha/job-1/checkpoint-0000000000000000007", None),
            ("a.b/..c/.hidden/c..", None),
            ("zürich/日本/emoji-🦀", None),
            ("with space/and:colon", None),
            (&component_max, None),
            (&path_max, None),
            (&components_max, None),
            ("", Some("path is empty")),
            ("/etc/passwd", Some("path is absolute")),
            ("a/../b", Some("path has a `..` component")),
            ("..", Some("path has a `..` component")),
            ("./a", Some("path has a `.` component")),
            ("a/.", Some("path has a `.` component")),
            ("a\\b", Some("path contains a backslash")),
            ("a\0b", Some("path contains a NUL byte")),
            ("a//b", Some("path has an empty component")),
            ("a/", Some("path has an empty component")),
            (&path_too_long, Some("path is longer than 1024 bytes")),
            (
                &component_too_long,
                Some("path has a component longer than 255 bytes"),
            ),
            (
                &components_too_many,
                Some("path has more than 64 components"),
            ),
            (
                &reserved,
                Some("path has a component with the reserved temporary-file prefix"),
            ),
        ];
        for (path, expected) in table {
            let result = validate_path(path);
            match (expected, result) {
                (None, Ok(())) => {}
                (Some(expected), Err(BlobError::InvalidPath { path: got, reason })) => {
                    assert_eq!(reason, expected, "path {path:?}");
                    assert_eq!(got, path);
                }
                (expected, result) => {
                    panic!("path {path:?}: expected {expected:?}, got {result:?}")
                }
            }
        }
    }

    #[test]
    fn reasons_quote_the_limits_they_enforce() {
        // The reasons are literals (they are `&'static str`); keep them in step with the limits.
        assert!(
            check_path(&"x".repeat(PATH_BYTES_MAX + 1))
                .unwrap_err()
                .contains("1024")
        );
        assert!(
            check_component(&"x".repeat(COMPONENT_BYTES_MAX + 1))
                .unwrap_err()
                .contains("255")
        );
        let deep = vec!["a"; PATH_COMPONENTS_MAX + 1].join("/");
        assert!(check_path(&deep).unwrap_err().contains("64"));
        assert_eq!(TEMP_FILE_ATTEMPTS_MAX, 64);
    }

    #[test]
    fn prefixes_allow_partial_last_components() {
        for prefix in ["", "ha/", "ha/job-1/checkpoint-", "ha/.", "ha/job-1/."] {
            assert!(validate_prefix(prefix).is_ok(), "prefix {prefix:?}");
        }
        for prefix in ["/ha", "ha//", "../ha/", "ha/./x", "a\\b", "a\0"] {
            let error = validate_prefix(prefix).unwrap_err();
            assert!(error.is_invalid_path(), "prefix {prefix:?}");
        }
    }

    #[test]
    fn errors_read_well_and_keep_their_source() {
        let error = BlobError::Io {
            path: "ha/x".to_owned(),
            source: io::Error::new(io::ErrorKind::PermissionDenied, "denied"),
        };
        assert_eq!(error.to_string(), "i/o error on blob \"ha/x\"");
        let source = std::error::Error::source(&error).expect("io errors keep their source");
        assert_eq!(source.to_string(), "denied");
        assert_eq!(error.path(), "ha/x");

        let ambiguous = BlobError::Ambiguous {
            path: "p".to_owned(),
        };
        assert!(ambiguous.is_ambiguous() && !ambiguous.is_not_found());
        let not_found = BlobError::NotFound {
            path: "p".to_owned(),
        };
        assert!(not_found.is_not_found() && !not_found.is_ambiguous());
        assert!(!not_found.is_unavailable() && !not_found.is_invalid_path());
    }

    /// What every store must do, run against both so the simulator's store cannot drift from
    /// the production one.
    async fn check_contract(store: &dyn BlobStore) {
        let path = "ha/job-1/checkpoint-0000000000000000007";

        // NotFound, then a round trip.
        assert!(store.get(path).await.unwrap_err().is_not_found());
        assert!(!store.exists(path).await.unwrap());
        store.put(path, Bytes::from_static(b"one")).await.unwrap();
        assert_eq!(store.get(path).await.unwrap(), Bytes::from_static(b"one"));
        assert!(store.exists(path).await.unwrap());

        // Overwrite, including with an empty blob.
        store.put(path, Bytes::from_static(b"two")).await.unwrap();
        assert_eq!(store.get(path).await.unwrap(), Bytes::from_static(b"two"));
        store.put(path, Bytes::new()).await.unwrap();
        assert_eq!(store.get(path).await.unwrap(), Bytes::new());

        // Delete is idempotent.
        store.delete(path).await.unwrap();
        store.delete(path).await.unwrap();
        store.delete("never/was/here").await.unwrap();
        assert!(store.get(path).await.unwrap_err().is_not_found());
        assert!(!store.exists(path).await.unwrap());

        // List is sorted, recursive and a plain string prefix match.
        for key in [
            "ha/job-2/checkpoint-0000000000000000002",
            "ha/job-1/checkpoint-0000000000000000010",
            "ha/job-1/checkpoint-0000000000000000009",
            "ha/job-1/job-graph",
            "ha/job-10/job-graph",
            "ha/job-1/deep/er/still",
            "top-level",
        ] {
            store.put(key, Bytes::from(key.to_owned())).await.unwrap();
        }
        let all = store.list("").await.unwrap();
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted);
        assert_eq!(all.len(), 7);
        assert_eq!(
            store.list("ha/job-1/").await.unwrap(),
            vec![
                "ha/job-1/checkpoint-0000000000000000009",
                "ha/job-1/checkpoint-0000000000000000010",
                "ha/job-1/deep/er/still",
                "ha/job-1/job-graph",
            ]
        );
        assert_eq!(
            store.list("ha/job-1/checkpoint-").await.unwrap(),
            vec![
                "ha/job-1/checkpoint-0000000000000000009",
                "ha/job-1/checkpoint-0000000000000000010",
            ]
        );
        assert_eq!(
            store.list("ha/job-1").await.unwrap().len(),
            5,
            "a prefix without a slash also matches job-10"
        );
        assert!(store.list("nothing/here/").await.unwrap().is_empty());
        assert!(store.list("top-level/").await.unwrap().is_empty());

        // A prefix of blobs is not a blob, and a blob cannot become a prefix of blobs.
        assert!(store.get("ha/job-1").await.unwrap_err().is_not_found());
        assert!(!store.exists("ha/job-1").await.unwrap());
        store.delete("ha/job-1").await.unwrap();
        store.delete("top-level/below").await.unwrap();
        let under_blob = store
            .put("top-level/below", Bytes::new())
            .await
            .unwrap_err();
        assert_eq!(io_kind(&under_blob), Some(io::ErrorKind::NotADirectory));
        let over_blobs = store.put("ha/job-1", Bytes::new()).await.unwrap_err();
        assert_eq!(io_kind(&over_blobs), Some(io::ErrorKind::IsADirectory));
        assert_eq!(
            store.list("").await.unwrap(),
            all,
            "failed puts changed nothing"
        );

        // Once the blobs under a prefix are gone, the prefix may become a blob.
        store.delete("ha/job-1/deep/er/still").await.unwrap();
        store
            .put("ha/job-1/deep/er", Bytes::from_static(b"now a blob"))
            .await
            .unwrap();
        assert_eq!(
            store.get("ha/job-1/deep/er").await.unwrap(),
            Bytes::from_static(b"now a blob")
        );

        // Invalid paths are refused by every operation.
        assert!(
            store
                .put("../escape", Bytes::new())
                .await
                .unwrap_err()
                .is_invalid_path()
        );
        assert!(store.get("/abs").await.unwrap_err().is_invalid_path());
        assert!(store.delete("a//b").await.unwrap_err().is_invalid_path());
        assert!(store.exists("").await.unwrap_err().is_invalid_path());
        assert!(store.list("/").await.unwrap_err().is_invalid_path());
    }

    /// Every file and directory under `dir`, relative, for checking what the store left behind.
    fn walk(dir: &Path) -> Vec<String> {
        let mut found = Vec::new();
        let mut pending = vec![dir.to_path_buf()];
        while let Some(current) = pending.pop() {
            for entry in fs::read_dir(&current).unwrap() {
                let entry = entry.unwrap();
                let relative = entry
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .display()
                    .to_string();
                if entry.file_type().unwrap().is_dir() {
                    pending.push(entry.path());
                }
                found.push(relative);
            }
        }
        found.sort();
        found
    }

    #[tokio::test]
    async fn fs_store_keeps_the_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path().join("nested/root")).unwrap();
        check_contract(&store).await;
        let leftovers: Vec<String> = walk(store.root())
            .into_iter()
            .filter(|path| path.contains(TEMP_FILE_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        check_contract(&MemoryBlobStore::new(1)).await;
    }

    #[tokio::test]
    async fn stores_are_shareable_through_arc() {
        let dir = tempfile::tempdir().unwrap();
        let stores: Vec<Arc<dyn BlobStore>> = vec![
            Arc::new(FsBlobStore::new(dir.path()).unwrap()),
            Arc::new(MemoryBlobStore::new(2)),
        ];
        for store in stores {
            let shared = Arc::clone(&store);
            shared.put("a/b", Bytes::from_static(b"x")).await.unwrap();
            assert_eq!(store.get("a/b").await.unwrap(), Bytes::from_static(b"x"));
            assert_eq!(Arc::new(store).list("a/").await.unwrap(), vec!["a/b"]);
        }
    }

    #[tokio::test]
    async fn fs_list_skips_temporary_and_foreign_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::new(dir.path()).unwrap();
        store
            .put("ha/job-1/job-graph", Bytes::from_static(b"g"))
            .await
            .unwrap();
        // What a crash during put leaves behind, and files no valid key could name.
        fs::write(
            dir.path()
                .join("ha/job-1")
                .join(format!("{TEMP_FILE_PREFIX}7-3")),
            b"torn",
        )
        .unwrap();
        fs::write(dir.path().join("ha/back\\slash"), b"foreign").unwrap();
        fs::create_dir(dir.path().join("ha/empty")).unwrap();
        assert_eq!(store.list("").await.unwrap(), vec!["ha/job-1/job-graph"]);
        assert_eq!(
            store.list("ha/job-1/").await.unwrap(),
            vec!["ha/job-1/job-graph"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fs_put_is_atomic_under_concurrent_readers() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FsBlobStore::new(dir.path()).unwrap());
        let path = "ha/job-1/checkpoint-0000000000000000001";
        let versions: Vec<Bytes> = (1..=8u8)
            .map(|version| Bytes::from(vec![version; 64 * 1024 * usize::from(version)]))
            .collect();
        store.put(path, versions[0].clone()).await.unwrap();

        let mut writers = Vec::new();
        for version in versions.clone() {
            let store = Arc::clone(&store);
            writers.push(tokio::spawn(async move {
                for _ in 0..10 {
                    store.put(path, version.clone()).await.unwrap();
                }
            }));
        }
        for _ in 0..200 {
            let read = store.get(path).await.unwrap();
            assert!(
                versions.contains(&read),
                "a torn read of {} bytes",
                read.len()
            );
        }
        for writer in writers {
            writer.await.unwrap();
        }
        assert_eq!(walk(dir.path()), vec!["ha", "ha/job-1", path]);
    }

    #[test]
    fn fs_new_fails_on_a_file_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        fs::write(&file, b"").unwrap();
        let error = FsBlobStore::new(&file).unwrap_err();
        assert!(io_kind(&error).is_some(), "{error:?}");
        assert_eq!(error.path(), file.display().to_string());
    }

    #[test]
    fn faults_validate_and_name_the_bad_field() {
        assert_eq!(BlobFaults::default().validate(), Ok(()));
        let bad = [
            (
                BlobFaults {
                    latency_ms_min: 5,
                    latency_ms_max: 4,
                    ..BlobFaults::default()
                },
                "latency_ms_min",
            ),
            (
                BlobFaults {
                    latency_ms_max: BlobFaults::LATENCY_LIMIT_MS + 1,
                    ..BlobFaults::default()
                },
                "latency_ms_max",
            ),
            (
                BlobFaults {
                    fail_probability: 1.5,
                    ..BlobFaults::default()
                },
                "fail_probability",
            ),
            (
                BlobFaults {
                    fail_probability: f64::NAN,
                    ..BlobFaults::default()
                },
                "fail_probability",
            ),
            (
                BlobFaults {
                    ambiguous_probability: -0.1,
                    ..BlobFaults::default()
                },
                "ambiguous_probability",
            ),
        ];
        let store = MemoryBlobStore::new(0);
        for (faults, field) in bad {
            let error = faults.validate().unwrap_err();
            assert!(error.starts_with(field), "{error}");
            assert_eq!(store.set_faults(faults), Err(error));
            assert_eq!(
                store.faults(),
                BlobFaults::default(),
                "a rejected setting changes nothing"
            );
        }
    }

    /// A fixed mix of calls over a few paths, recording each outcome and how long it took.
    async fn run_script(store: &MemoryBlobStore) -> Vec<String> {
        let mut lines = Vec::new();
        for step in 0..200u32 {
            let path = format!("ha/job-{}/checkpoint-{}", step % 3, step % 7);
            let start = Instant::now();
            let result = match step % 5 {
                0 | 1 => outcome(&store.put(&path, Bytes::from(step.to_string())).await),
                2 => outcome(&store.get(&path).await),
                3 => outcome(&store.delete(&path).await),
                _ => outcome(&store.list("ha/").await),
            };
            lines.push(format!("{step} {result} after {:?}", start.elapsed()));
        }
        lines
    }

    fn chaotic() -> BlobFaults {
        BlobFaults {
            latency_ms_min: 1,
            latency_ms_max: 40,
            fail_probability: 0.2,
            ambiguous_probability: 0.3,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_store_replays_a_seed() {
        let mut runs = Vec::new();
        for seed in [7, 7, 8] {
            let store = MemoryBlobStore::new(seed);
            store.set_faults(chaotic()).unwrap();
            let lines = run_script(&store).await;
            runs.push((lines, store.snapshot(), store.operations()));
        }
        assert_eq!(
            runs[0], runs[1],
            "the same seed must give the same outcomes"
        );
        assert_ne!(
            runs[0].0, runs[2].0,
            "another seed should give other outcomes"
        );
        assert_eq!(runs[0].2, 200);
        // The faults really fired, or the comparison above proves little.
        let lines = &runs[0].0;
        assert!(lines.iter().any(|line| line.contains("unavailable")));
        assert!(lines.iter().any(|line| line.contains("unknown")));
    }

    #[tokio::test]
    async fn every_operation_draws_the_same_amount() {
        // Same seed, different kinds of call at the same steps: the injected failures still land
        // on the same steps, because each call draws exactly three numbers.
        let faults = BlobFaults {
            fail_probability: 0.5,
            ..BlobFaults::default()
        };
        let writer = MemoryBlobStore::new(3);
        let mixer = MemoryBlobStore::new(3);
        writer.set_faults(faults).unwrap();
        mixer.set_faults(faults).unwrap();
        let mut failed_steps = (Vec::new(), Vec::new());
        for step in 0..64u32 {
            if writer
                .put("a", Bytes::new())
                .await
                .is_err_and(|e| e.is_unavailable())
            {
                failed_steps.0.push(step);
            }
            let mixed = match step % 3 {
                0 => mixer.exists("a").await.map(|_| ()),
                1 => mixer.list("").await.map(|_| ()),
                _ => mixer.delete("a").await,
            };
            if mixed.is_err_and(|e| e.is_unavailable()) {
                failed_steps.1.push(step);
            }
        }
        assert_eq!(failed_steps.0, failed_steps.1);
        assert!(!failed_steps.0.is_empty() && failed_steps.0.len() < 64);
    }

    #[tokio::test]
    async fn ambiguous_writes_happened() {
        let store = MemoryBlobStore::new(4);
        store
            .set_faults(BlobFaults {
                ambiguous_probability: 1.0,
                ..BlobFaults::default()
            })
            .unwrap();
        let error = store
            .put("ha/blob", Bytes::from_static(b"x"))
            .await
            .unwrap_err();
        assert!(error.is_ambiguous(), "{error:?}");
        assert_eq!(
            store.snapshot().get("ha/blob"),
            Some(&Bytes::from_static(b"x"))
        );
        // Reads are never ambiguous.
        assert_eq!(
            store.get("ha/blob").await.unwrap(),
            Bytes::from_static(b"x")
        );
        assert!(store.exists("ha/blob").await.unwrap());
        assert_eq!(store.list("").await.unwrap(), vec!["ha/blob"]);
        assert!(store.delete("ha/blob").await.unwrap_err().is_ambiguous());
        assert!(store.snapshot().is_empty());
        // A write that fails on its own merits reports that failure, not ambiguity.
        store.set_faults(BlobFaults::default()).unwrap();
        store.put("ha/blob", Bytes::new()).await.unwrap();
        store
            .set_faults(BlobFaults {
                ambiguous_probability: 1.0,
                ..BlobFaults::default()
            })
            .unwrap();
        let nested = store.put("ha/blob/below", Bytes::new()).await.unwrap_err();
        assert_eq!(io_kind(&nested), Some(io::ErrorKind::NotADirectory));
    }

    #[tokio::test]
    async fn unavailable_writes_did_not_happen() {
        let store = MemoryBlobStore::new(5);
        store
            .put("ha/kept", Bytes::from_static(b"kept"))
            .await
            .unwrap();
        store
            .set_faults(BlobFaults {
                fail_probability: 1.0,
                ambiguous_probability: 1.0,
                ..BlobFaults::default()
            })
            .unwrap();
        assert!(
            store
                .put("ha/new", Bytes::new())
                .await
                .unwrap_err()
                .is_unavailable()
        );
        assert!(
            store
                .put("ha/kept", Bytes::new())
                .await
                .unwrap_err()
                .is_unavailable()
        );
        assert!(store.delete("ha/kept").await.unwrap_err().is_unavailable());
        assert!(store.get("ha/kept").await.unwrap_err().is_unavailable());
        let snapshot = store.snapshot();
        assert_eq!(snapshot.len(), 1);
        assert_eq!(snapshot["ha/kept"], Bytes::from_static(b"kept"));
        // Invalid paths are refused before any draw, so they are not counted.
        assert!(store.get("/abs").await.unwrap_err().is_invalid_path());
        assert_eq!(store.operations(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn latency_is_tokio_time() {
        let store = MemoryBlobStore::new(6);
        let start = Instant::now();
        store.put("a", Bytes::new()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO, "no faults, no latency");

        store
            .set_faults(BlobFaults {
                latency_ms_min: 250,
                latency_ms_max: 250,
                ..BlobFaults::default()
            })
            .unwrap();
        let start = Instant::now();
        store.get("a").await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_millis(250));

        store
            .set_faults(BlobFaults {
                latency_ms_min: 10,
                latency_ms_max: 20,
                ..BlobFaults::default()
            })
            .unwrap();
        let mut seen_ms = std::collections::BTreeSet::new();
        for _ in 0..50 {
            let start = Instant::now();
            store.exists("a").await.unwrap();
            let elapsed_ms = start.elapsed().as_millis();
            assert!((10..=20).contains(&elapsed_ms), "{elapsed_ms} ms");
            seen_ms.insert(elapsed_ms);
        }
        assert!(seen_ms.len() > 1, "latency should vary: {seen_ms:?}");
    }

    #[tokio::test]
    async fn clones_share_one_store() {
        let store = MemoryBlobStore::new(9);
        let clone = store.clone();
        clone.put("a", Bytes::from_static(b"x")).await.unwrap();
        assert_eq!(store.get("a").await.unwrap(), Bytes::from_static(b"x"));
        clone
            .set_faults(BlobFaults {
                fail_probability: 0.5,
                ..BlobFaults::default()
            })
            .unwrap();
        assert_eq!(store.faults().fail_probability, 0.5);
        assert_eq!(store.operations(), 2);
        assert!(format!("{store:?}").contains("blobs: 1"));
    }

    fn component() -> impl Strategy<Value = String> {
        "[^/\\\\\\x00]{1,16}".prop_filter("not a dot component or reserved", |component| {
            component != "." && component != ".." && !component.starts_with(TEMP_FILE_PREFIX)
        })
    }

    fn valid_path() -> impl Strategy<Value = String> {
        prop::collection::vec(component(), 1..6).prop_map(|components| components.join("/"))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn put_then_get_returns_the_bytes(
            path in valid_path(),
            bytes in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            prop_assert!(validate_path(&path).is_ok(), "generated an invalid path {:?}", path);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let dir = tempfile::tempdir().unwrap();
            let stores: Vec<Box<dyn BlobStore>> = vec![
                Box::new(FsBlobStore::new(dir.path()).unwrap()),
                Box::new(MemoryBlobStore::new(0)),
            ];
            for store in stores {
                let bytes = Bytes::from(bytes.clone());
                let (read, listed) = runtime.block_on(async {
                    store.put(&path, bytes.clone()).await.unwrap();
                    (store.get(&path).await.unwrap(), store.list("").await.unwrap())
                });
                prop_assert_eq!(read, bytes);
                prop_assert_eq!(listed, vec![path.clone()]);
            }
        }

        #[test]
        fn validation_never_panics_and_accepts_only_clean_paths(path in any::<String>()) {
            if validate_path(&path).is_ok() {
                prop_assert!(!path.is_empty() && path.len() <= PATH_BYTES_MAX);
                prop_assert!(!path.starts_with('/') && !path.contains("//") && !path.ends_with('/'));
                prop_assert!(path.split('/').all(|c| c != "." && c != ".."));
            }
        }
    }
}
