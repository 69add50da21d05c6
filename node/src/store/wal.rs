//! A write-ahead log under the redb file.
//!
//! redb makes a commit durable by writing every page the transaction
//! touched in place and calling `fdatasync` on the database file. A commit
//! of a delivered message touches five or six tables, so that is twenty or
//! so scattered page writes per commit, and on the virtual disks nodes run
//! on each scattered write costs about as much as the whole `fdatasync` of
//! one sequential write. [`WalBackend`] is the storage redb writes through:
//!
//! - every write goes to the database file at once (into the page cache, not
//!   synced) and is also kept in memory;
//! - when redb asks for durability, the writes since the last time are
//!   appended to the active log file as one checksummed batch, with **one**
//!   sequential write and one `fdatasync`;
//! - when the active log file holds more than its capacity, the other log
//!   file becomes the active one, and a background thread syncs the
//!   database file, after which the old log's batches are no longer needed
//!   ("retired"). A log file is only reused once retired.
//!
//! At open, the batches of both log files are replayed onto the database
//! file, oldest epoch first, the file is synced and both logs are reset.
//! After a power loss the database file may lack any write that was not
//! synced, exactly as a file without the log would; the replay restores
//! every write of every batch whose `fdatasync` returned, and a torn last
//! batch (bad checksum) is ignored, as its commit never returned. Both logs
//! are checked whole before anything is replayed: a damaged batch that a
//! whole batch follows is damage in the middle of the log, and the open is
//! refused (nothing is written), as neither replaying past it nor stopping
//! at it would keep every commit that returned.
//!
//! Log file layout: a 4 KiB header page (`IMIWAL01`, the epoch, a CRC-32),
//! then batches aligned to 4 KiB, each a 24-byte header (batch magic,
//! epoch, payload length, CRC-32 of epoch, length and payload) and the
//! payload: `0 ‖ offset u64 ‖ length u32 ‖ bytes` for a write,
//! `1 ‖ length u64` for a change of the file length. A batch counts only if
//! its epoch is its file's epoch, so batches left over from an earlier use
//! of the file are never replayed.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread;

use redb::backends::FileBackend;
use redb::{BackendError, Database, DatabaseError, StorageBackend, StorageError};

const FILE_MAGIC: [u8; 8] = *b"IMIWAL01";
const BATCH_MAGIC: u32 = 0x5741_4c42;
const PAGE: u64 = 4096;
/// The header page of a log file.
const HEADER_LEN: u64 = PAGE;
const BATCH_HEADER_LEN: usize = 24;
/// A log file is grown (zero-filled, so later syncs change no metadata) by
/// at least this much at a time.
const GROW: u64 = 1 << 20;
/// Log bytes after which the other log file takes over, by default.
pub const DEFAULT_CAPACITY: u64 = 16 << 20;

const OP_WRITE: u8 = 0;
const OP_SET_LEN: u8 = 1;

/// The paths of the two log files of the store at `path`.
pub fn log_paths(path: &Path) -> [PathBuf; 2] {
    let name = |i: usize| {
        let mut p = path.as_os_str().to_owned();
        p.push(format!("-wal{i}"));
        PathBuf::from(p)
    };
    [name(0), name(1)]
}

/// Opens (or with `create`, creates) the redb database at `path` on a
/// write-ahead log, after replaying what the log holds. Fails with
/// [`DatabaseError::DatabaseAlreadyOpen`] while another process has it.
pub fn open(path: &Path, create: bool) -> Result<Database, DatabaseError> {
    open_with_capacity(path, create, DEFAULT_CAPACITY)
}

/// [`open`] with a log capacity other than [`DEFAULT_CAPACITY`].
pub fn open_with_capacity(
    path: &Path,
    create: bool,
    capacity: u64,
) -> Result<Database, DatabaseError> {
    let main = OpenOptions::new()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .open(path)?;
    // Held from here until redb closes the file: nobody else replays or
    // writes meanwhile. redb takes its own lock on the same open file.
    match main.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => return Err(DatabaseError::DatabaseAlreadyOpen),
        Err(std::fs::TryLockError::Error(err)) => return Err(err.into()),
    }
    let backend = WalBackend::recover(main, path, capacity).map_err(storage)?;
    Database::builder().create_with_backend(backend)
}

fn storage(err: io::Error) -> DatabaseError {
    DatabaseError::Storage(StorageError::Io(err))
}

fn corrupt(path: &Path, reason: impl std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "the write-ahead log {} is damaged ({reason}); restore the store from a backup",
            path.display()
        ),
    )
}

fn align(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

fn header_bytes(epoch: u64) -> Vec<u8> {
    let mut page = vec![0u8; HEADER_LEN as usize];
    page[..8].copy_from_slice(&FILE_MAGIC);
    page[8..16].copy_from_slice(&epoch.to_le_bytes());
    let crc = crc32fast::hash(&page[..16]);
    page[16..20].copy_from_slice(&crc.to_le_bytes());
    page
}

/// The epoch in a log file's header; `None` for a file never written.
fn read_header(file: &File, path: &Path) -> io::Result<Option<u64>> {
    let mut page = [0u8; 20];
    let len = file.metadata()?.len();
    if len < page.len() as u64 {
        return Ok(None);
    }
    file.read_exact_at(&mut page, 0)?;
    if page.iter().all(|b| *b == 0) {
        return Ok(None);
    }
    if page[..8] != FILE_MAGIC {
        return Err(corrupt(path, "not a log file"));
    }
    let crc = u32::from_le_bytes(page[16..20].try_into().expect("4 bytes"));
    if crc32fast::hash(&page[..16]) != crc {
        return Err(corrupt(path, "header checksum"));
    }
    Ok(Some(u64::from_le_bytes(
        page[8..16].try_into().expect("8 bytes"),
    )))
}

fn batch_crc(epoch: u64, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&epoch.to_le_bytes());
    hasher.update(&(payload.len() as u32).to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}

/// Encodes `payload` as a batch of `epoch`, padded to whole pages.
fn batch_bytes(epoch: u64, payload: &[u8]) -> Vec<u8> {
    let len = align((BATCH_HEADER_LEN + payload.len()) as u64) as usize;
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&BATCH_MAGIC.to_le_bytes());
    out.extend_from_slice(&epoch.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&batch_crc(epoch, payload).to_le_bytes());
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(payload);
    out.resize(len, 0);
    out
}

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Replayed {
    batches: u64,
    bytes: u64,
}

/// The header of a batch at `pos` of a log file of `epoch`: the payload's
/// length and checksum; `None` where no batch of that epoch fits.
fn batch_header(file: &File, pos: u64, epoch: u64, end: u64) -> io::Result<Option<(u64, u32)>> {
    if pos + BATCH_HEADER_LEN as u64 > end {
        return Ok(None);
    }
    let mut header = [0u8; BATCH_HEADER_LEN];
    file.read_exact_at(&mut header, pos)?;
    Ok(parse_batch_header(&header, pos, epoch, end))
}

fn parse_batch_header(header: &[u8], pos: u64, epoch: u64, end: u64) -> Option<(u64, u32)> {
    let magic = u32::from_le_bytes(header[..4].try_into().expect("4 bytes"));
    let batch_epoch = u64::from_le_bytes(header[4..12].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(header[12..16].try_into().expect("4 bytes")) as u64;
    let crc = u32::from_le_bytes(header[16..20].try_into().expect("4 bytes"));
    if magic != BATCH_MAGIC || batch_epoch != epoch || pos + BATCH_HEADER_LEN as u64 + len > end {
        return None;
    }
    Some((len, crc))
}

/// The payload of the batch at `pos` if its checksum holds.
fn read_batch(
    file: &File,
    pos: u64,
    epoch: u64,
    len: u64,
    crc: u32,
) -> io::Result<Option<Vec<u8>>> {
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, pos + BATCH_HEADER_LEN as u64)?;
    Ok((batch_crc(epoch, &payload) == crc).then_some(payload))
}

/// The valid batches of one log file, checked before anything is replayed.
#[derive(Debug, Default)]
struct Scan {
    /// Offset and payload length of each batch, in order.
    batches: Vec<(u64, u64)>,
    /// Whether the batches end on a batch whose checksum fails (torn).
    torn: bool,
}

/// Finds the batches of the log `file` (of `epoch`). The batches of one
/// epoch are appended one after the other and each is synced before the
/// next is written, so only the **last** one can be torn by a crash. A
/// damaged batch followed by a valid batch of the same epoch is damage in
/// the middle of the log: refused, as replaying past it or stopping at it
/// would both lose or corrupt commits that returned.
fn scan(file: &File, path: &Path, epoch: u64) -> io::Result<Scan> {
    let end = file.metadata()?.len();
    let mut pos = HEADER_LEN;
    let mut found = Scan::default();
    while let Some((len, crc)) = batch_header(file, pos, epoch, end)? {
        if read_batch(file, pos, epoch, len, crc)?.is_none() {
            found.torn = true;
            break;
        }
        found.batches.push((pos, len));
        pos += align(BATCH_HEADER_LEN as u64 + len);
    }
    // Whatever stopped the batches (a torn batch, a damaged header, the
    // zeros ahead of the append position, batches of an older use of the
    // file), no valid batch of this epoch may come after it.
    if let Some(later) = next_valid_batch(file, pos + PAGE, epoch, end)? {
        return Err(corrupt(
            path,
            format!(
                "the batch at offset {pos} is damaged but a later one at offset {later} is whole, so commits in between would be lost"
            ),
        ));
    }
    Ok(found)
}

/// The offset of the first valid batch of `epoch` at or after `from` (page
/// aligned), reading the file in large chunks.
fn next_valid_batch(file: &File, from: u64, epoch: u64, end: u64) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 1 << 20;
    let mut start = align(from);
    let mut buf = vec![0u8; CHUNK as usize];
    while start < end {
        let n = CHUNK.min(end - start) as usize;
        file.read_exact_at(&mut buf[..n], start)?;
        for page in (0..n).step_by(PAGE as usize) {
            if page + BATCH_HEADER_LEN > n {
                break;
            }
            let pos = start + page as u64;
            if let Some((len, crc)) =
                parse_batch_header(&buf[page..page + BATCH_HEADER_LEN], pos, epoch, end)
                && read_batch(file, pos, epoch, len, crc)?.is_some()
            {
                return Ok(Some(pos));
            }
        }
        start += n as u64;
    }
    Ok(None)
}

/// Applies the batches `scan` found in the log `file` to `main`.
fn replay(file: &File, scan: &Scan, main: &File) -> io::Result<Replayed> {
    let mut done = Replayed::default();
    for &(pos, len) in &scan.batches {
        let mut payload = vec![0u8; len as usize];
        file.read_exact_at(&mut payload, pos + BATCH_HEADER_LEN as u64)?;
        apply_ops(&payload, main)?;
        done.batches += 1;
        done.bytes += len;
    }
    Ok(done)
}

fn apply_ops(mut payload: &[u8], main: &File) -> io::Result<()> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a log batch is malformed");
    while let Some((&op, rest)) = payload.split_first() {
        match op {
            OP_WRITE if rest.len() >= 12 => {
                let offset = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
                let len = u32::from_le_bytes(rest[8..12].try_into().expect("4 bytes")) as usize;
                let data = rest.get(12..12 + len).ok_or_else(bad)?;
                main.write_all_at(data, offset)?;
                payload = &rest[12 + len..];
            }
            OP_SET_LEN if rest.len() >= 8 => {
                let len = u64::from_le_bytes(rest[..8].try_into().expect("8 bytes"));
                main.set_len(len)?;
                payload = &rest[8..];
            }
            _ => return Err(bad()),
        }
    }
    Ok(())
}

fn sync_dir(path: &Path) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}

struct Log {
    files: [File; 2],
    paths: [PathBuf; 2],
    /// Bytes of each file that are allocated (written at least once).
    allocated: [u64; 2],
    active: usize,
    /// The active file's epoch.
    epoch: u64,
    /// Where the next batch goes in the active file.
    pos: u64,
    /// Operations since the last sync.
    pending: Vec<u8>,
    capacity: u64,
}

#[derive(Default)]
struct RetireState {
    retired: [bool; 2],
    failed: Option<String>,
}

type Retirement = Arc<(Mutex<RetireState>, Condvar)>;

/// redb's storage: the database file plus a write-ahead log.
pub struct WalBackend {
    main: Arc<FileBackend>,
    log: Mutex<Log>,
    retirement: Retirement,
    checkpointer: Mutex<Option<mpsc::Sender<usize>>>,
}

impl std::fmt::Debug for WalBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalBackend").finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WalBackend {
    /// Replays the logs of `path` onto `main` (locked by the caller), syncs
    /// it, resets the logs and starts the checkpointer.
    fn recover(main: File, path: &Path, capacity: u64) -> io::Result<WalBackend> {
        let paths = log_paths(path);
        let mut created = false;
        let mut open_log = |p: &Path| -> io::Result<File> {
            created |= !p.exists();
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(p)
        };
        let files = [open_log(&paths[0])?, open_log(&paths[1])?];
        let epochs = [
            read_header(&files[0], &paths[0])?,
            read_header(&files[1], &paths[1])?,
        ];
        let newest = epochs.iter().flatten().copied().max().unwrap_or(0);
        let mut order: Vec<(u64, usize)> = epochs
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.map(|e| (e, i)))
            // A file more than one epoch behind was retired and reset long ago.
            .filter(|(e, _)| *e + 1 >= newest)
            .collect();
        order.sort();
        // Check both logs whole before writing anything.
        let mut scans: Vec<(u64, usize, Scan)> = Vec::with_capacity(order.len());
        for &(epoch, i) in &order {
            let found = scan(&files[i], &paths[i], epoch)?;
            if let Some((_, _, earlier)) = scans.last()
                && earlier.torn
                && !found.batches.is_empty()
            {
                // A log only takes over after the previous one's last batch
                // was synced whole: that batch cannot have been torn.
                return Err(corrupt(
                    &paths[order[scans.len() - 1].1],
                    "its last batch is damaged although the next log holds later commits",
                ));
            }
            scans.push((epoch, i, found));
        }
        let mut total = Replayed::default();
        for (_, i, found) in &scans {
            let done = replay(&files[*i], found, &main)?;
            total.batches += done.batches;
            total.bytes += done.bytes;
        }
        if total.batches > 0 {
            tracing::info!(
                store = %path.display(),
                batches = total.batches,
                bytes = total.bytes,
                "store: replayed the write-ahead log"
            );
        }
        main.sync_all()?;
        // Reset: the inactive file one epoch behind (nothing valid in it),
        // the active file on a fresh epoch.
        let inactive_epoch = newest + 1;
        let epoch = newest + 2;
        files[1].write_all_at(&header_bytes(inactive_epoch), 0)?;
        files[1].sync_data()?;
        files[0].write_all_at(&header_bytes(epoch), 0)?;
        files[0].sync_data()?;
        if created {
            sync_dir(path)?;
        }
        let allocated = [files[0].metadata()?.len(), files[1].metadata()?.len()];
        let main = Arc::new(FileBackend::new(main).map_err(|e| io::Error::other(e.to_string()))?);
        let retirement: Retirement = Arc::new((
            Mutex::new(RetireState {
                retired: [true, true],
                failed: None,
            }),
            Condvar::new(),
        ));
        let (tx, rx) = mpsc::channel::<usize>();
        {
            let main = Arc::clone(&main);
            let retirement = Arc::clone(&retirement);
            thread::Builder::new()
                .name("imi-store-checkpoint".into())
                .spawn(move || checkpointer(&main, &retirement, &rx))?;
        }
        Ok(WalBackend {
            main,
            log: Mutex::new(Log {
                files,
                paths,
                allocated,
                active: 0,
                epoch,
                pos: HEADER_LEN,
                pending: Vec::new(),
                capacity: capacity.max(PAGE),
            }),
            retirement,
            checkpointer: Mutex::new(Some(tx)),
        })
    }

    /// Syncs the database file and empties both logs (at close).
    fn checkpoint(&self) -> io::Result<()> {
        let log = lock(&self.log);
        self.main.sync_data()?;
        let header = header_bytes(log.epoch + 1);
        for file in &log.files {
            file.write_all_at(&header, 0)?;
            file.sync_data()?;
        }
        Ok(())
    }

    /// Makes `other` the active log file once it is retired.
    fn switch(&self, log: &mut Log) -> io::Result<()> {
        let other = 1 - log.active;
        {
            let (state, changed) = &*self.retirement;
            let mut state = lock(state);
            loop {
                if let Some(failed) = &state.failed {
                    return Err(io::Error::other(format!(
                        "syncing the store file failed: {failed}"
                    )));
                }
                if state.retired[other] {
                    break;
                }
                state = changed.wait(state).unwrap_or_else(|e| e.into_inner());
            }
            state.retired[log.active] = false;
        }
        // Durable together with the first batch: same file, same sync.
        log.files[other].write_all_at(&header_bytes(log.epoch + 1), 0)?;
        let old = log.active;
        log.active = other;
        log.epoch += 1;
        log.pos = HEADER_LEN;
        if let Some(tx) = &*lock(&self.checkpointer) {
            let _ = tx.send(old);
        }
        Ok(())
    }
}

/// Syncs the database file for each log file handed over, then marks that
/// log retired.
fn checkpointer(main: &FileBackend, retirement: &Retirement, jobs: &mpsc::Receiver<usize>) {
    while let Ok(file) = jobs.recv() {
        let result = main.sync_data();
        let (state, changed) = &**retirement;
        let mut state = lock(state);
        match result {
            Ok(()) => state.retired[file] = true,
            Err(err) => {
                tracing::error!(error = %err, "store: syncing the database file failed");
                state.failed = Some(err.to_string());
            }
        }
        changed.notify_all();
    }
}

impl StorageBackend for WalBackend {
    fn len(&self) -> Result<u64, io::Error> {
        self.main.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), io::Error> {
        self.main.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), io::Error> {
        let mut log = lock(&self.log);
        log.pending.push(OP_SET_LEN);
        log.pending.extend_from_slice(&len.to_le_bytes());
        self.main.set_len(len)
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), io::Error> {
        let len = u32::try_from(data.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "write larger than 4 GiB"))?;
        let mut log = lock(&self.log);
        log.pending.push(OP_WRITE);
        log.pending.extend_from_slice(&offset.to_le_bytes());
        log.pending.extend_from_slice(&len.to_le_bytes());
        log.pending.extend_from_slice(data);
        self.main.write(offset, data)
    }

    fn sync_data(&self) -> Result<(), io::Error> {
        let mut guard = lock(&self.log);
        let log = &mut *guard;
        if log.pending.is_empty() {
            return Ok(());
        }
        let len = align((BATCH_HEADER_LEN + log.pending.len()) as u64);
        if log.pos > HEADER_LEN && log.pos + len > log.capacity {
            self.switch(log)?;
        }
        let batch = batch_bytes(log.epoch, &log.pending);
        let active = log.active;
        let end = log.pos + batch.len() as u64;
        if end > log.allocated[active] {
            // Grow with zeros now, so later syncs only overwrite.
            let to = align(end.max(log.allocated[active] + GROW));
            let zeros = vec![0u8; (to - end) as usize];
            log.files[active].write_all_at(&zeros, end)?;
            log.allocated[active] = to;
        }
        log.files[active].write_all_at(&batch, log.pos)?;
        log.files[active].sync_data().map_err(|err| {
            io::Error::new(
                err.kind(),
                format!(
                    "syncing the write-ahead log {} failed: {err}",
                    log.paths[active].display()
                ),
            )
        })?;
        log.pos = end;
        log.pending.clear();
        Ok(())
    }

    fn close(&self) -> Result<(), io::Error> {
        // Stop the checkpointer, make the database file whole on its own
        // and empty the logs, so a closed store is just its file.
        lock(&self.checkpointer).take();
        let checkpoint = self.checkpoint();
        let closed = self.main.close();
        checkpoint.and(closed)
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.main.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.main.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.main.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.main.query_lock_range(start, end)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use redb::{ReadableDatabase, TableDefinition};

    const T: TableDefinition<'_, u64, &[u8]> = TableDefinition::new("t");

    fn put(db: &Database, key: u64) {
        let tx = db.begin_write().unwrap();
        tx.open_table(T)
            .unwrap()
            .insert(key, vec![key as u8; 700].as_slice())
            .unwrap();
        tx.commit().unwrap();
    }

    fn keys(db: &Database) -> Vec<u64> {
        let read = db.begin_read().unwrap();
        let table = read.open_table(T).unwrap();
        redb::ReadableTable::iter(&table)
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect()
    }

    /// Copies the logs of `from` and the database file `main` (as it was
    /// on disk at some sync) to `to`: what a power loss leaves.
    pub(crate) fn crash_copy(from: &Path, main: &[u8], to: &Path) {
        std::fs::write(to, main).unwrap();
        for (a, b) in log_paths(from).iter().zip(log_paths(to)) {
            std::fs::copy(a, b).unwrap();
        }
    }

    /// Start offsets of the batches of the active log (epoch in its header).
    fn batch_offsets(path: &Path) -> Vec<u64> {
        let file = File::open(path).unwrap();
        let epoch = read_header(&file, path).unwrap().unwrap();
        let end = file.metadata().unwrap().len();
        let mut out = Vec::new();
        let mut pos = HEADER_LEN;
        while let Some((len, _)) = batch_header(&file, pos, epoch, end).unwrap() {
            out.push(pos);
            pos += align(BATCH_HEADER_LEN as u64 + len);
        }
        out
    }

    #[test]
    fn commits_survive_losing_every_unsynced_write_of_the_database_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open(&path, true).unwrap();
        // What the database file holds durably: synced at open, never since.
        let synced = std::fs::read(&path).unwrap();
        for key in 0..50 {
            put(&db, key);
        }
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&path, &synced, &crashed);
        drop(db);
        let db = open(&crashed, false).unwrap();
        assert_eq!(keys(&db), (0..50).collect::<Vec<_>>());
        // And it goes on from there.
        put(&db, 50);
        drop(db);
        assert_eq!(keys(&open(&crashed, false).unwrap()).len(), 51);
    }

    #[test]
    fn a_torn_last_batch_loses_only_the_commit_that_never_returned() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open(&path, true).unwrap();
        let synced = std::fs::read(&path).unwrap();
        for key in 0..20 {
            put(&db, key);
        }
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&path, &synced, &crashed);
        drop(db);
        // Tear the last batch: a byte of its payload never reached the disk.
        let log = &log_paths(&crashed)[0];
        let last = *batch_offsets(log).last().unwrap();
        let file = OpenOptions::new().write(true).open(log).unwrap();
        file.write_all_at(&[0xAB], last + BATCH_HEADER_LEN as u64 + 100)
            .unwrap();
        let db = open(&crashed, false).unwrap();
        assert_eq!(keys(&db), (0..19).collect::<Vec<_>>());
    }

    #[test]
    fn a_damaged_batch_in_the_middle_of_the_log_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open(&path, true).unwrap();
        let synced = std::fs::read(&path).unwrap();
        for key in 0..20 {
            put(&db, key);
        }
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&path, &synced, &crashed);
        drop(db);
        // Damage a batch in the middle: later commits returned, so stopping
        // the replay there would silently lose them.
        let log = &log_paths(&crashed)[0];
        let offsets = batch_offsets(log);
        let middle = offsets[offsets.len() / 2];
        let file = OpenOptions::new().write(true).open(log).unwrap();
        file.write_all_at(&[0xAB], middle + BATCH_HEADER_LEN as u64 + 100)
            .unwrap();
        let before = std::fs::read(&crashed).unwrap();
        let err = open(&crashed, false).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
        assert!(err.contains("restore the store from a backup"), "{err}");
        assert_eq!(std::fs::read(&crashed).unwrap(), before, "nothing replayed");
    }

    #[test]
    fn a_damaged_last_batch_of_the_older_log_refuses_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open_with_capacity(&path, true, 160 << 10).unwrap();
        let synced = std::fs::read(&path).unwrap();
        let logs = log_paths(&path);
        let epoch = |i: usize| read_header(&File::open(&logs[i]).unwrap(), &logs[i]).unwrap();
        let mut key = 0;
        while epoch(1) < epoch(0) {
            put(&db, key);
            key += 1;
        }
        put(&db, key);
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&path, &synced, &crashed);
        drop(db);
        let older = &log_paths(&crashed)[0];
        let last = *batch_offsets(older).last().unwrap();
        OpenOptions::new()
            .write(true)
            .open(older)
            .unwrap()
            .write_all_at(&[0xAB], last + BATCH_HEADER_LEN as u64 + 100)
            .unwrap();
        let err = open(&crashed, false).unwrap_err().to_string();
        assert!(err.contains("damaged"), "{err}");
    }

    #[test]
    fn both_logs_replay_in_epoch_order_after_a_switch() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        // Room for a few commits per log file: the second log takes over once.
        let db = open_with_capacity(&path, true, 160 << 10).unwrap();
        let synced = std::fs::read(&path).unwrap();
        let logs = log_paths(&path);
        let epoch = |i: usize| read_header(&File::open(&logs[i]).unwrap(), &logs[i]).unwrap();
        let mut key = 0;
        // Until the second log has taken over, then two more commits into it.
        while epoch(1) < epoch(0) {
            put(&db, key);
            key += 1;
        }
        for _ in 0..2 {
            put(&db, key);
            key += 1;
        }
        let crashed = dir.path().join("crashed.redb");
        crash_copy(&path, &synced, &crashed);
        drop(db);
        let logs = log_paths(&crashed);
        assert!(
            !batch_offsets(&logs[0]).is_empty() && !batch_offsets(&logs[1]).is_empty(),
            "the test needs both logs in use"
        );
        let db = open(&crashed, false).unwrap();
        assert_eq!(keys(&db), (0..key).collect::<Vec<_>>());
    }

    #[test]
    fn many_switches_keep_every_commit_across_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open_with_capacity(&path, true, 64 << 10).unwrap();
        for key in 0..400 {
            put(&db, key);
        }
        drop(db);
        let db = open_with_capacity(&path, false, 64 << 10).unwrap();
        assert_eq!(keys(&db), (0..400).collect::<Vec<_>>());
        for key in 400..500 {
            put(&db, key);
        }
        drop(db);
        assert_eq!(keys(&open(&path, false).unwrap()).len(), 500);
    }

    #[test]
    fn a_damaged_log_header_is_refused_and_nothing_is_changed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        put(&open(&path, true).unwrap(), 1);
        let log = &log_paths(&path)[1];
        let file = OpenOptions::new().write(true).open(log).unwrap();
        file.write_all_at(b"garbage!", 0).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = open(&path, false).unwrap_err().to_string();
        assert!(err.contains("write-ahead log"), "{err}");
        assert!(err.contains("damaged"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }

    #[test]
    fn a_store_in_use_is_not_opened_twice() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.redb");
        let db = open(&path, true).unwrap();
        put(&db, 7);
        assert!(matches!(
            open(&path, false),
            Err(DatabaseError::DatabaseAlreadyOpen)
        ));
        drop(db);
        assert_eq!(keys(&open(&path, false).unwrap()), vec![7]);
    }
}
