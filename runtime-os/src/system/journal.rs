//! Restoring from the journal: what `sprint-tune restore` does after a
//! crash or a `sprint-tune apply`.
//!
//! Restore is complete or says exactly what is not. Every path is checked
//! against the tuner's own list before anything is written (a journal is a
//! file that anyone with write access to its directory could have
//! edited). Then every entry is tried, not only those before the first
//! failure: a value the kernel refuses (an IRQ that will not move) is
//! reported with the kernel's error and kept, alone with the others that
//! failed, in a journal rewritten atomically (a temporary file, fsync,
//! rename), so that a rerun tries just those. A last line torn by a crash
//! in the middle of an append (no newline, or not JSON) is ignored with a
//! warning: apply writes a setting only after its line is complete and
//! synced, so a torn line's setting was never changed. A journal still
//! locked by a tuner that is shutting down is waited for, a bounded time.

use super::{boot_id, io_err, Header, Record, SystemError};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How `restore` goes about it.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// How long to wait for a tuner that holds the journal's lock.
    pub lock_wait: Duration,
}

impl Default for RestoreOptions {
    /// Five seconds of waiting for the lock.
    fn default() -> RestoreOptions {
        RestoreOptions {
            lock_wait: Duration::from_secs(5),
        }
    }
}

/// A value the kernel would not take back.
#[derive(Debug)]
pub struct RestoreFailure {
    /// The file.
    pub path: PathBuf,
    /// The value recorded before the tuner changed it.
    pub value: String,
    /// The kernel's error.
    pub error: io::Error,
}

/// What a restore did.
#[derive(Debug, Default)]
pub struct Restored {
    /// Settings put back: the file and its value.
    pub restored: Vec<(PathBuf, String)>,
    /// Settings the kernel refused; they stay in the journal.
    pub failed: Vec<RestoreFailure>,
    /// What was ignored, and why (a torn last line).
    pub warnings: Vec<String>,
}

/// [`restore_journal_with`] the default options.
pub fn restore_journal(path: &Path) -> Result<Restored, SystemError> {
    restore_journal_with(path, &RestoreOptions::default())
}

/// Restores what the journal at `path` recorded, newest first. Settings
/// put back leave the journal; it is removed once none is left. Errors
/// (nothing written): the journal is locked past `options.lock_wait`,
/// corrupt before its last line, from another boot, or names a file that
/// is not the tuner's ([`super::is_tunable_path`]).
pub fn restore_journal_with(
    path: &Path,
    options: &RestoreOptions,
) -> Result<Restored, SystemError> {
    let Some(mut file) = open_locked(path, options.lock_wait)? else {
        return Ok(Restored::default());
    };
    let mut text = Vec::new();
    file.read_to_end(&mut text)
        .map_err(io_err(format!("reading the journal {}", path.display())))?;
    let mut out = Restored::default();
    let Some(journal) = parse(path, &text, &mut out.warnings)? else {
        // The header itself is torn: the tuner died before changing
        // anything.
        remove(path)?;
        return Ok(out);
    };
    if let Some(r) = journal
        .records
        .iter()
        .find(|r| !super::is_tunable_path(&r.path))
    {
        return Err(SystemError::NotTunable {
            origin: format!("the journal {}", path.display()),
            path: r.path.clone(),
        });
    }
    // Only the first value recorded for a file is the original.
    let mut originals: Vec<&Record> = Vec::new();
    for r in &journal.records {
        if !originals.iter().any(|o| o.path == r.path) {
            originals.push(r);
        }
    }
    let mut kept = Vec::new();
    for r in originals.into_iter().rev() {
        match std::fs::write(&r.path, &r.old) {
            Ok(()) => out.restored.push((r.path.clone(), r.old.clone())),
            Err(error) => {
                kept.push(r);
                out.failed.push(RestoreFailure {
                    path: r.path.clone(),
                    value: r.old.clone(),
                    error,
                });
            }
        }
    }
    if kept.is_empty() {
        remove(path)?;
    } else {
        kept.reverse();
        rewrite(path, &journal.header, &kept)?;
    }
    Ok(out)
}

/// The journal, opened and locked (waiting up to `wait` for the tuner
/// holding it), or `None` if there is none.
fn open_locked(path: &Path, wait: Duration) -> Result<Option<File>, SystemError> {
    let deadline = Instant::now() + wait;
    loop {
        let file = match OpenOptions::new().read(true).open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(format!("opening the journal {}", path.display()))(e)),
        };
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(SystemError::StillLocked {
                        path: path.to_path_buf(),
                        waited_ms: wait.as_millis(),
                    })
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io_err(format!("locking the journal {}", path.display()))(e))
                }
            }
        }
        // The holder may have removed the journal, or replaced it (a
        // restore's rewrite), while this waited: lock the file that is
        // there now.
        if still_at(&file, path) {
            return Ok(Some(file));
        }
    }
}

/// Whether `file` is the one at `path`.
fn still_at(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    // No inode numbers to compare: the open file is taken as the one.
    #[cfg(not(unix))]
    {
        let _ = (file, path);
        true
    }
}

struct Journal {
    header: Header,
    records: Vec<Record>,
}

/// The journal's header and records; `None` if the header line is torn.
fn parse(
    path: &Path,
    text: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Option<Journal>, SystemError> {
    let corrupt = |line: usize, why: String| SystemError::Corrupt {
        path: path.to_path_buf(),
        line,
        why,
    };
    let text = String::from_utf8_lossy(text);
    let complete = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let Some(first) = lines.first() else {
        return Err(corrupt(1, "empty".into()));
    };
    let header: Header = match serde_json::from_str(first) {
        Ok(h) => h,
        Err(_) if lines.len() == 1 && !complete => {
            warnings.push(format!(
                "the journal {}'s header is torn (a tuner died writing it, before any change): removed",
                path.display()
            ));
            return Ok(None);
        }
        Err(e) => return Err(corrupt(1, e.to_string())),
    };
    let ours = boot_id();
    if header.boot_id != ours {
        return Err(SystemError::OtherBoot {
            path: path.to_path_buf(),
            theirs: header.boot_id,
            ours,
        });
    }
    let mut records = Vec::new();
    let last = lines.len() - 1;
    for (i, l) in lines.iter().enumerate().skip(1) {
        if l.trim().is_empty() {
            continue;
        }
        let parsed = serde_json::from_str::<Record>(l);
        if i == last && (!complete || parsed.is_err()) {
            warnings.push(format!(
                "ignored the last line of the journal {} (line {}), torn by a crash while it was written: {:?}",
                path.display(),
                i + 1,
                l
            ));
            continue;
        }
        records.push(parsed.map_err(|e| corrupt(i + 1, e.to_string()))?);
    }
    Ok(Some(Journal { header, records }))
}

fn remove(path: &Path) -> Result<(), SystemError> {
    std::fs::remove_file(path).map_err(io_err(format!("removing the journal {}", path.display())))
}

/// Replaces the journal with `header` and `records`: written beside it,
/// synced, then renamed over it, so that a crash leaves either the old
/// journal or the new one. A restore waiting for the old one's lock finds
/// it replaced and takes the new one (`open_locked`).
fn rewrite(path: &Path, header: &Header, records: &[&Record]) -> Result<(), SystemError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "journal".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let what = || {
        format!(
            "rewriting the journal {} (through {})",
            path.display(),
            tmp.display()
        )
    };
    let mut text = serde_json::to_string(header).unwrap_or_default();
    text.push('\n');
    for r in records {
        text.push_str(&serde_json::to_string(r).unwrap_or_default());
        text.push('\n');
    }
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            File::open(dir)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_err(what())(e)
    })
}
